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
 * Records the results of many calls in at most two statements: those in by `cut` (or all of them, when
 * they all end sooner), then the rest once they end. A batch is recorded whole when its calls end
 * together, and one hung call holds back only its own result, never its batch's.
 */
export async function recordInTwo<T, R>(calls: Promise<T>[], cut: Promise<unknown>, record: (results: T[]) => Promise<R[]>): Promise<R[]> {
  const results = new Map<number, T>();
  const all = Promise.all(calls.map((call, i) => call.then((result) => void results.set(i, result))));
  const late = Symbol('late');
  if ((await Promise.race([all, cut.then(() => late)])) !== late) return record(calls.map((_, i) => results.get(i)!));
  const early = [...results.keys()];
  const first = early.length > 0 ? await record(early.map((i) => results.get(i)!)) : [];
  await all;
  const rest = calls.map((_, i) => i).filter((i) => !early.includes(i));
  return [...first, ...(await record(rest.map((i) => results.get(i)!)))];
}
