/**
 * What the emulator can do wrong to one request:
 * - '429', '503', '500': answer RESOURCE_EXHAUSTED, UNAVAILABLE or INTERNAL without doing the call;
 * - '401', '409': answer UNAUTHENTICATED (an access token that expired) or ABORTED (a concurrency
 *   conflict) without doing the call;
 * - '403': answer PERMISSION_DENIED for the RPC's permission without doing the call (a caller that may
 *   run a job but not cancel its executions, say);
 * - 'reset': drop the connection without doing the call;
 * - 'hang': hold the call without doing it and never answer, until the client gives up and disconnects
 *   (or the emulator stops): a front end that hung, or a network partition, answers nothing, and only the
 *   caller's deadline ends the call ("By default, gRPC does not set a deadline which means it is possible
 *   for a client to end up waiting for a response effectively forever", https://grpc.io/docs/guides/deadlines/;
 *   google.rpc.Code DEADLINE_EXCEEDED, https://github.com/googleapis/googleapis/blob/master/google/rpc/code.proto);
 * - 'delay': do the call, then hold the answer for `delayMs` (past the client's deadline);
 * - 'lost': do the call, then answer INTERNAL or drop the connection, in turn.
 */
export type FaultKind = '401' | '403' | '409' | '429' | '500' | '503' | 'delay' | 'reset' | 'hang' | 'lost';

/** Which requests fail and how; see CloudRunEmulator.setFaults (which also takes several at once). */
export interface FaultPlan {
  /** Probability that a call fails, 0..1. */
  rate: number;
  /** Picked uniformly for each failing call. */
  kinds: FaultKind[];
  /** Which RPCs may fail (default: runJob, getExecution, cancelExecution, listExecutions). */
  rpcs?: string[];
  /** Only requests to these jobs (full names, `projects/P/locations/L/jobs/J`) may fail (default: any). */
  jobs?: string[];
  /** For 'delay': how long the answer is held (longer than the client deadline); default 1000. */
  delayMs?: number;
  /** Same seed and same requests, same faults (default 1). */
  seed?: number;
}

/** The fault kinds counted from zero; '401', '409' and 'hang' are counted from their first injection. */
export const FAULT_KINDS: readonly FaultKind[] = ['403', '429', '500', '503', 'delay', 'reset', 'lost'];

const DEFAULT_RPCS = ['runJob', 'getExecution', 'cancelExecution', 'listExecutions'];

/**
 * Decides, request by request, which fault (if any) a plan injects. Only requests to the plan's RPCs
 * draw from the generator, so a run that makes the same requests in the same order gets the same faults.
 */
export function faultPicker(plan: FaultPlan): (rpc: string, path?: string) => FaultKind | undefined {
  const random = mulberry32(plan.seed ?? 1);
  const rpcs = new Set(plan.rpcs ?? DEFAULT_RPCS);
  // A request's path names its job first: /v2/projects/P/locations/L/jobs/J, then `:run` or `/executions/…`.
  const ofJob = (path = '') => !plan.jobs || plan.jobs.some((job) => new RegExp(`^/v2/${job}($|[:/])`).test(path));
  return (rpc, path) => {
    if (!rpcs.has(rpc) || !ofJob(path) || plan.kinds.length === 0) return undefined;
    if (random() >= plan.rate) return undefined;
    return plan.kinds[Math.floor(random() * plan.kinds.length)];
  };
}

/**
 * Several plans at once: every plan draws for every request, each from its own generator, so one plan's
 * faults do not depend on whether another hit; the first plan that hits decides. The plan is returned
 * beside the kind for what it says of that kind (delayMs).
 */
export function faultsPicker(plans: FaultPlan[]): (rpc: string, path?: string) => { kind: FaultKind; plan: FaultPlan } | undefined {
  const pickers = plans.map((plan) => ({ plan, pick: faultPicker(plan) }));
  return (rpc, path) => {
    const hits = pickers.map(({ plan, pick }) => ({ plan, kind: pick(rpc, path) }));
    const first = hits.find((h) => h.kind !== undefined);
    return first && { kind: first.kind!, plan: first.plan };
  };
}

/** A small seeded PRNG (mulberry32): uniform in [0, 1), the same sequence for the same seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
