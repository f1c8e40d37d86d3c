import { ExecutionsClient, JobsClient, protos } from '@google-cloud/run';
import { PassThroughClient } from 'google-auth-library';
import { executionEnv, type DispatchRequest, type ExecutionStatus, type Executor } from './executor';

type Execution = protos.google.cloud.run.v2.IExecution;
type Overrides = protos.google.cloud.run.v2.RunJobRequest.IOverrides;
type ClientOptions = NonNullable<ConstructorParameters<typeof JobsClient>[0]>;
const { State, ExecutionReason } = protos.google.cloud.run.v2.Condition;

/** Where the Cloud Run Admin API is and how long each call may take. */
export interface CloudRunOptions {
  /** host:port of a Cloud Run Admin API v2 emulator (CLOUD_RUN_EMULATOR_HOST); REST over plain HTTP, no credentials. */
  emulatorHost?: string;
  /** Deadline of each API call, ms (the client's default is 60 s and it never retries these RPCs). */
  apiTimeoutMs: number;
  /** Used when a task's `job` is a bare id and the task names no project/region. */
  defaultProject?: string;
  defaultRegion?: string;
}

/**
 * Runs each attempt as one execution of a Cloud Run job (Admin API v2), with the contract's
 * environment as a container override. The clients are made once: each holds its own channel.
 */
export function createCloudRunExecutor(options: CloudRunOptions): Executor {
  const clientOptions = emulatorClientOptions(options);
  const jobs = new JobsClient(clientOptions);
  const executions = new ExecutionsClient(clientOptions);
  // A fresh object per call: the client writes routing headers into the options it is given.
  const callOptions = () => ({ timeout: options.apiTimeoutMs });
  const call = async <T>(method: string, name: string, send: () => Promise<T>): Promise<T> => {
    try {
      return await send();
    } catch (err) {
      throw new CloudRunCallError(method, name, options.apiTimeoutMs, err);
    }
  };

  return {
    async dispatch(req) {
      const name = jobName(req, options);
      const [operation] = await call('runJob', name, () =>
        jobs.runJob({ name, overrides: overridesFor(req) }, callOptions()),
      );
      // The operation ends only when the execution does; its metadata already is the new
      // Execution, so the name is known without waiting.
      const executionName = operationExecution(operation)?.name;
      if (!executionName) throw new Error(`Cloud Run runJob ${name}: operation ${operation.name} names no execution`);
      return executionName;
    },

    async status(executionName) {
      try {
        const [execution] = await call('getExecution', executionName, () =>
          executions.getExecution({ name: executionName }, callOptions()),
        );
        return executionStatus(execution);
      } catch (err) {
        if (err instanceof CloudRunCallError && err.status === 'NOT_FOUND') {
          return { state: 'failed', error: `execution ${executionName} no longer exists` };
        }
        throw err;
      }
    },

    async cancel(executionName) {
      try {
        // The operation ends when the execution has stopped; the next status check sees that.
        await call('cancelExecution', executionName, () =>
          executions.cancelExecution({ name: executionName }, callOptions()),
        );
      } catch (err) {
        // Gone, or already finished: either way there is nothing left to stop.
        if (err instanceof CloudRunCallError && (err.status === 'NOT_FOUND' || err.status === 'FAILED_PRECONDITION')) return;
        throw err;
      }
    },
  };
}

/**
 * What an Execution resource says of its end. Enums are names when read by getExecution and
 * numbers when decoded from an operation's metadata; both are accepted.
 */
export function executionStatus(execution: Execution): ExecutionStatus {
  const completed = execution.conditions?.find((c) => c.type === 'Completed');
  const state = enumName(State, completed?.state);
  if (state !== 'CONDITION_SUCCEEDED' && state !== 'CONDITION_FAILED') return { state: 'running' };
  const failed = execution.failedCount ?? 0;
  const cancelled = execution.cancelledCount ?? 0;
  // Cloud Run shows a cancellation as a failed Completed condition with reason CANCELLED;
  // cancelled tasks with none failed mean the same even if the reason is missing.
  if (enumName(ExecutionReason, completed?.executionReason) === 'CANCELLED' || (cancelled > 0 && failed === 0)) {
    return { state: 'cancelled' };
  }
  if (state === 'CONDITION_SUCCEEDED' && failed === 0) return { state: 'success' };
  const counts = `${failed} of ${execution.taskCount ?? '?'} tasks failed, ${execution.succeededCount ?? 0} succeeded`;
  return { state: 'failed', error: completed?.message ? `${completed.message} (${counts})` : `execution failed (${counts})` };
}

/**
 * The Execution an operation's metadata holds. gax decodes it into `metadata`, except for an
 * operation already done with an error: then it stops before the metadata, which is decoded here.
 */
function operationExecution(operation: {
  metadata: unknown;
  latestResponse: protos.google.longrunning.IOperation;
}): Execution | undefined {
  if (operation.metadata) return operation.metadata as Execution;
  const value = operation.latestResponse.metadata?.value;
  if (!value) return undefined;
  return protos.google.cloud.run.v2.Execution.decode(typeof value === 'string' ? Buffer.from(value, 'base64') : value);
}

/** The job's full name: `job` as given when it is one, else built from the task's or the default project and region. */
function jobName({ spec, taskName }: DispatchRequest, options: CloudRunOptions): string {
  const job = spec.job ?? '';
  if (job.startsWith('projects/')) return job;
  const project = spec.project ?? options.defaultProject;
  const region = spec.region ?? options.defaultRegion;
  if (!project) throw new Error(`task "${taskName}": job "${job}" needs a project: set project on the task or GOOGLE_CLOUD_PROJECT`);
  if (!region) throw new Error(`task "${taskName}": job "${job}" needs a region: set region on the task or TICKRUN_REGION`);
  return `projects/${project}/locations/${region}/jobs/${job}`;
}

function overridesFor(req: DispatchRequest): Overrides {
  const { args, taskCount, timeoutMs } = req.spec;
  const env = Object.entries(executionEnv(req)).map(([name, value]) => ({ name, value }));
  return {
    // An empty list cannot travel in proto3, so "no arguments" has its own flag.
    containerOverrides: [{ env, ...(args && (args.length ? { args } : { clearArgs: true })) }],
    ...(taskCount !== undefined && { taskCount }),
    // Cloud Run's task timeout: a backstop to tickrun's own, which cancels the execution.
    ...(timeoutMs !== undefined && { timeout: { seconds: Math.ceil(timeoutMs / 1000) } }),
  };
}

/** REST over plain HTTP without credentials for an emulator; the default (gRPC, ambient credentials) otherwise. */
function emulatorClientOptions({ emulatorHost, apiTimeoutMs }: CloudRunOptions): ClientOptions {
  if (!emulatorHost) return {};
  const url = new URL(`http://${emulatorHost}`);
  return {
    fallback: true,
    protocol: 'http',
    apiEndpoint: url.hostname,
    port: Number(url.port || 80),
    // Without fetchImplementation gaxios imports node-fetch dynamically, which jest refuses. The
    // timeout is here because in REST mode gax never hands the call's deadline to fetch: measured,
    // a call with { timeout: 300 } waited the full 2 s the emulator took.
    // The cast: google-gax types authClient with its own nested copy of google-auth-library, so
    // TypeScript sees two unrelated AuthClient classes; at run time gax only calls fetch on it.
    authClient: new PassThroughClient({
      transporterOptions: { fetchImplementation: fetch, timeout: apiTimeoutMs },
    }) as unknown as ClientOptions['authClient'],
  };
}

function enumName(values: Record<number, string>, value: unknown): string | undefined {
  return typeof value === 'number' ? values[value] : (value as string | undefined) ?? undefined;
}

const GRPC_STATUS = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED',
  'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];

/**
 * A failed API call, with its gRPC status name whichever transport made it: over gRPC the error
 * carries the numeric code; over REST gaxios rejects with the HTTP answer, whose body is a
 * google.rpc.Status, before gax can turn it into a GoogleError.
 */
class CloudRunCallError extends Error {
  readonly status: string | undefined;

  constructor(method: string, name: string, timeoutMs: number, cause: unknown) {
    const e = (cause ?? {}) as { code?: unknown; status?: unknown; details?: unknown; message?: unknown; response?: { data?: unknown } };
    const body = parseStatusBody(e.response?.data);
    let status = typeof e.code === 'number' && e.code < GRPC_STATUS.length ? GRPC_STATUS[e.code] : body?.status;
    if (!status && e.status === 404) status = 'NOT_FOUND';
    if (!status && e.code === 'TimeoutError') status = 'DEADLINE_EXCEEDED';
    let message = body?.message ?? (typeof e.details === 'string' && e.details ? e.details : String(e.message ?? cause));
    // fetch says only "fetch failed"; why (ECONNREFUSED, a DNS error) is at the end of its causes.
    const root = rootCause(cause);
    if (root && !message.includes(root)) message += ` (${root})`;
    const detail = status === 'DEADLINE_EXCEEDED' ? `no answer within ${timeoutMs} ms` : status ? `${status}: ${message}` : message;
    super(`Cloud Run ${method} ${name}: ${detail}`, { cause });
    this.name = 'CloudRunCallError';
    this.status = status;
  }
}

function rootCause(err: unknown): string | undefined {
  let e = err as { cause?: unknown; message?: unknown } | undefined;
  for (let depth = 0; e?.cause && depth < 5; depth++) e = e.cause as typeof e;
  return e && e !== err && typeof e.message === 'string' ? e.message : undefined;
}

function parseStatusBody(data: unknown): { status?: string; message?: string } | undefined {
  try {
    const json = typeof data === 'string' ? JSON.parse(data) : data;
    return (json as { error?: { status?: string; message?: string } } | undefined)?.error;
  } catch {
    return undefined;
  }
}
