import { ExecutorFault, ExecutorRefusal } from './executor';

const GRPC_STATUS = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED',
  'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];

/** google.rpc.Code for an HTTP answer whose body is not a google.rpc.Status (a proxy's page, say). */
const HTTP_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED',
};

/** Codes after which the request may have been carried out: it failed midway, or its answer was lost. */
const MAYBE_DONE = new Set(['INTERNAL', 'UNKNOWN', 'DEADLINE_EXCEEDED', 'DATA_LOSS', 'CANCELLED']);
/**
 * Codes of a request refused before it was carried out, that a later one may pass: ABORTED (google.rpc.Code:
 * a concurrency conflict, to retry "at a higher level") and UNAUTHENTICATED (an access token that expired;
 * the client fetches a new one for the next call).
 */
const NOT_DONE = new Set(['ABORTED', 'UNAUTHENTICATED']);
/** With no answer at all: codes and names along the cause chain saying the request never left. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);
/** …and those saying the connection broke, or the answer was unreadable, after it may have gone out. */
const CUT_OFF = new Set([
  'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT', 'UND_ERR_ABORTED', 'TimeoutError', 'AbortError', 'SyntaxError',
]);
/**
 * The same in words: undici's "other side closed" and "terminated" (the body was cut short), node's
 * "socket hang up", gax's "Received null response"; and grpc-js's details when it reports a stream
 * dropped after it was sent ("Connection dropped", "Write error", ECONNRESET) as UNAVAILABLE, the code
 * a server's plain refusal has too.
 */
const CUT_OFF_WORDS = /other side closed|^terminated$|socket hang up|Received null|malformed response|Connection dropped|ECONNRESET|EPIPE|ETIMEDOUT|RST_STREAM|Write (error|failed)/i;

/** A failed Cloud Run API call that is not an ExecutorFault: a refusal that trying again will not change. */
export class CloudRunCallError extends Error {
  constructor(
    message: string,
    /** The google.rpc.Code name, when the answer had one. */
    readonly status: string | undefined,
    cause: unknown,
  ) {
    super(message, { cause });
    this.name = 'CloudRunCallError';
  }
}

/**
 * What a failed API call means, whichever transport made it: an ExecutorFault when it must not count
 * against the attempt (quota, refused, or maybe done), a CloudRunCallError otherwise. Over gRPC the error
 * carries the numeric code; over REST gaxios rejects with the HTTP answer, whose body is a
 * google.rpc.Status, before gax can turn it into a GoogleError; a broken connection or a client
 * timeout has no answer at all, only a chain of causes.
 */
export function callError(method: string, name: string, timeoutMs: number, cause: unknown): ExecutorFault | CloudRunCallError {
  const reading = readError(cause);
  const { status, http, message, timedOut } = reading;
  const why = timedOut ? `no answer within ${timeoutMs} ms` : status ? `${status}: ${message}` : http ? `HTTP ${http}: ${message}` : message;
  const text = `Cloud Run ${method} ${name}: ${why}`;
  const kind = faultKind(reading);
  return kind ? new ExecutorFault(kind, text, { cause }) : new CloudRunCallError(text, status, cause);
}

type Reading = ReturnType<typeof readError>;

function faultKind({ status, grpc, http, message, timedOut, trail }: Reading): ExecutorFault['kind'] | undefined {
  if (timedOut) return 'ambiguous';
  if (status === 'RESOURCE_EXHAUSTED') return 'quota';
  if (status === 'UNAVAILABLE') return grpc && CUT_OFF_WORDS.test(message) ? 'ambiguous' : 'retryable';
  if (status && NOT_DONE.has(status)) return 'retryable';
  if (status) return MAYBE_DONE.has(status) ? 'ambiguous' : undefined;
  // A 5xx without a google.rpc.Status (a load balancer's 502): it may have reached Cloud Run.
  if (http) return http >= 500 ? 'ambiguous' : undefined;
  if (trail.some((w) => CUT_OFF.has(w) || CUT_OFF_WORDS.test(w))) return 'ambiguous';
  return trail.some((w) => NEVER_SENT.has(w)) ? 'retryable' : undefined;
}

type ErrorLike = { code?: unknown; status?: unknown; name?: unknown; details?: unknown; message?: unknown; cause?: unknown; response?: { data?: unknown } };

function readError(cause: unknown) {
  const e = (cause ?? {}) as ErrorLike;
  const body = parseStatusBody(e.response?.data);
  // gRPC's code is 0..16; gaxios puts the HTTP status (always >= 100) in the same field.
  const grpc = typeof e.code === 'number' && e.code < GRPC_STATUS.length ? GRPC_STATUS[e.code] : undefined;
  const http = typeof e.status === 'number' ? e.status : undefined;
  // gaxios's own deadline (see emulatorClientOptions); gRPC's says DEADLINE_EXCEEDED itself.
  const timedOut = e.code === 'TimeoutError';
  const status = grpc ?? body?.status ?? (http === undefined ? undefined : HTTP_STATUS[http]);
  let message = body?.message ?? (typeof e.details === 'string' && e.details ? e.details : String(e.message ?? cause));
  if (e.name === 'SyntaxError') message = `unreadable answer: ${message}`;
  const chain = causes(cause);
  // With no answer, fetch says only "fetch failed"; why (ECONNREFUSED, "other side closed") is at the end of its causes.
  const root = chain.length > 1 && !body ? chain.at(-1)!.message : undefined;
  if (typeof root === 'string' && !message.includes(root)) message += ` (${root})`;
  const trail = chain.flatMap((c) => [c.code, c.name, c.message]).filter((w): w is string => typeof w === 'string');
  return { status, grpc, http, message, timedOut, trail };
}

/** Each error of a cause chain, outermost first (at most 6, in case of a cycle). */
function causes(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  for (let e = err as ErrorLike | undefined; e && typeof e === 'object' && out.length < 6; e = e.cause as ErrorLike | undefined) out.push(e);
  return out;
}

function parseStatusBody(data: unknown): { status?: string; message?: string } | undefined {
  try {
    const json = typeof data === 'string' ? JSON.parse(data) : data;
    return (json as { error?: { status?: string; message?: string } } | undefined)?.error;
  } catch {
    return undefined;
  }
}

/**
 * What to do about each runJob refusal no retry cures. google.rpc.Code: FAILED_PRECONDITION means "do not
 * retry until the system state has been explicitly fixed"; INVALID_ARGUMENT, arguments that never work.
 * Running with overrides needs run.jobs.runWithOverrides ("Cloud Run IAM permissions").
 */
const FIX_FOR: Record<string, (job: string) => string> = {
  PERMISSION_DENIED: () =>
    "grant tickrun's service account run.jobs.runWithOverrides on the job (roles/run.developer has it) and iam.serviceAccounts.actAs on its service account (roles/iam.serviceAccountUser)",
  NOT_FOUND: (job) => `create the job ${job}, or correct the task's job, project or region`,
  FAILED_PRECONDITION: () => 'the job cannot run as it is: fix it (its latest deployment, say), then retry the run',
  INVALID_ARGUMENT: () => "correct the task's args, env, task_count or timeout: Cloud Run refuses its overrides",
};

/** A runJob error as dispatch throws it: a refusal no retry cures becomes an ExecutorRefusal saying what to fix; any other error is returned as it is. */
export function dispatchRefusal(job: string, err: unknown): unknown {
  const fix = err instanceof CloudRunCallError && err.status ? FIX_FOR[err.status] : undefined;
  return fix ? new ExecutorRefusal(`${(err as Error).message}; ${fix(job)}`, { cause: err }) : err;
}
