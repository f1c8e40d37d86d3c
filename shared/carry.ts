/**
 * Work a cycle started and did not wait for: a batch whose last calls were still out when the next cycle
 * was due (a hung runJob, a listing held up to its deadline). The cycle goes on without it, so one slow
 * call delays only its own tasks; the carried work records its outcomes when it ends, and the tick waits
 * for all of it before it ends. Every call in it was started only if it ends within the tick's budget.
 */
export class Carry {
  private readonly work = new Set<Promise<unknown>>();
  /** Tasks whose status check is still under way: the next cycles leave them to it. */
  readonly checking = new Set<string>();
  /**
   * When a cycle of this tick last read the tasks in flight (performance.now()), and whether the next one
   * must read them anyway (a check failed, an execution was adopted): a cycle woken early for a refilled
   * run budget leaves the checks to their interval, so claiming more often costs no Cloud Run reads.
   */
  polledAt = -Infinity;
  pollNext = false;
  /** Whether the next cycle is woken for a region's run budget alone (cycle.ts). */
  budgetWake = false;

  /** Goes on with `promise` in the background; its error, if any, fails the tick at its end. */
  add(promise: Promise<unknown>): void {
    const kept = promise.finally(() => this.work.delete(kept));
    // Awaited in drain; this handler only keeps Node from calling it unhandled meanwhile.
    kept.catch(() => {});
    this.work.add(kept);
  }

  /** Waits for all carried work; throws the first error among it. */
  async drain(): Promise<void> {
    while (this.work.size > 0) {
      const results = await Promise.allSettled([...this.work]);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
  }
}

/**
 * Waits for `promise` at most `ms`: its value if it settled by then (or its error, thrown), else
 * `undefined` after handing it to `carry` with `then`, which is applied to its value when it comes.
 */
export async function within<T>(promise: Promise<T>, ms: number, carry: Carry | undefined, then: (value: T) => void): Promise<void> {
  if (!carry) return then(await promise);
  let timer: NodeJS.Timeout | undefined;
  const late = Symbol('late');
  const first = await Promise.race([promise, new Promise<typeof late>((resolve) => (timer = setTimeout(() => resolve(late), Math.max(0, ms))))]).finally(() => clearTimeout(timer));
  if (first === late) carry.add(promise.then(then));
  else then(first);
}

/**
 * Records the outcome of many calls in at most two statements: the items whose calls have ended (`ready`)
 * once `cut` comes, then the rest once `all` has ended; or every item at once when `all` ends first. A
 * batch is recorded whole when its calls end together, and one hung call holds back only its own items.
 * `cut` is `after` ms once `started` (all calls begun) resolves.
 */
export async function recordInTwo<K, R>(
  items: K[],
  all: Promise<unknown>,
  { started = Promise.resolve(), after }: { started?: Promise<unknown>; after: number },
  ready: (item: K) => boolean,
  record: (items: K[]) => Promise<R>,
): Promise<R[]> {
  const late = Symbol('late');
  const cut = started.then(() => new Promise<typeof late>((resolve) => setTimeout(() => resolve(late), after).unref()));
  if ((await Promise.race([all, cut])) !== late) return [await record(items)];
  const early = new Set(items.filter(ready));
  const first = early.size > 0 ? [await record([...early])] : [];
  await all;
  return [...first, await record(items.filter((item) => !early.has(item)))];
}
