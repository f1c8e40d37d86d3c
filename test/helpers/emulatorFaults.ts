/**
 * What the emulator can do wrong to one request:
 * - '429', '503', '500': answer RESOURCE_EXHAUSTED, UNAVAILABLE or INTERNAL without doing the call;
 * - '401', '409': answer UNAUTHENTICATED (an access token that expired) or ABORTED (a concurrency
 *   conflict) without doing the call;
 * - '403': answer PERMISSION_DENIED for the RPC's permission without doing the call (a caller that may
 *   run a job but not cancel its executions, say);
 * - 'reset': drop the connection without doing the call;
 * - 'delay': do the call, then hold the answer for `delayMs` (past the client's deadline);
 * - 'lost': do the call, then answer INTERNAL or drop the connection, in turn.
 */
export type FaultKind = '401' | '403' | '409' | '429' | '500' | '503' | 'delay' | 'reset' | 'lost';

/** Which requests fail and how; see CloudRunEmulator.setFaults. */
export interface FaultPlan {
  /** Probability that a call fails, 0..1. */
  rate: number;
  /** Picked uniformly for each failing call. */
  kinds: FaultKind[];
  /** Which RPCs may fail (default: runJob, getExecution, cancelExecution, listExecutions). */
  rpcs?: string[];
  /** For 'delay': how long the answer is held (longer than the client deadline); default 1000. */
  delayMs?: number;
  /** Same seed and same requests, same faults (default 1). */
  seed?: number;
}

/** The fault kinds counted from zero; '401' and '409' are counted from their first injection. */
export const FAULT_KINDS: readonly FaultKind[] = ['403', '429', '500', '503', 'delay', 'reset', 'lost'];

const DEFAULT_RPCS = ['runJob', 'getExecution', 'cancelExecution', 'listExecutions'];

/**
 * Decides, request by request, which fault (if any) a plan injects. Only requests to the plan's RPCs
 * draw from the generator, so a run that makes the same requests in the same order gets the same faults.
 */
export function faultPicker(plan: FaultPlan): (rpc: string) => FaultKind | undefined {
  const random = mulberry32(plan.seed ?? 1);
  const rpcs = new Set(plan.rpcs ?? DEFAULT_RPCS);
  return (rpc) => {
    if (!rpcs.has(rpc) || plan.kinds.length === 0) return undefined;
    if (random() >= plan.rate) return undefined;
    return plan.kinds[Math.floor(random() * plan.kinds.length)];
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
