import type { EmulatedExecution } from './cloudRunEmulator';

/** The most executions running at once, from their start and end times (exact, not sampled). */
export function peakRunning(executions: Pick<EmulatedExecution, 'createdAt' | 'finishedAt'>[]): number {
  // Ends before starts at the same instant: an execution that ends as another starts does not overlap it.
  const edges = executions.flatMap((e) => [[e.createdAt, 1], [e.finishedAt ?? Infinity, -1]] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  let peak = 0;
  for (const [, change] of edges) peak = Math.max(peak, (running += change));
  return peak;
}

/** Executions started per minute, from the first start to the last. */
export function startsPerMinute(executions: Pick<EmulatedExecution, 'createdAt'>[]): number {
  const starts = executions.map((e) => e.createdAt).sort((a, b) => a - b);
  return starts.length < 2 ? 0 : ((starts.length - 1) / (starts.at(-1)! - starts[0])) * 60_000;
}
