/** Rows 4 and 6: whole tick cycles, in process: wall time for 100 tasks, and database round trips per cycle. */
import type { Config } from '../shared/config';
import { tick } from '../shared/tick';
import { clearRuns, median, seedRun, type Bench, type Measured } from './common';

/**
 * One busy cycle: `count` long-running tasks to send while `count` sent by the cycle before are checked
 * (a cycle checks what was in flight when it began). Seeds a fresh run of 2 × `count`, sends the first
 * half unmeasured, and returns the summary of the tick (one cycle) that follows.
 */
async function cycleOnce(bench: Bench, config: Config, count: number) {
  await seedRun(bench, 2 * count);
  const deps = { config: { ...config, batchSize: count }, pool: bench.pool, executors: bench.executors };
  await tick(deps, { budgetMs: 0 });
  return tick(deps, { budgetMs: 0 });
}

export async function measureFullCycle(bench: Bench): Promise<Measured> {
  bench.emu.latencyMs = 100;
  const { config } = bench;
  const tries = bench.quick ? 3 : 5;
  const cycles = [];
  for (let i = 0; i < tries; i++) cycles.push(await cycleOnce(bench, config, 100));
  const sequential = await cycleOnce(bench, { ...config, dispatchConcurrency: 1, statusConcurrency: 1 }, 100);
  const wall = median(cycles.map((c) => c.durationMs));
  // Sending and checking run side by side: the cycle's floor is the longer of the two.
  const limitMs = Math.max(Math.ceil(100 / config.dispatchConcurrency) * 100, Math.ceil(100 / config.statusConcurrency) * 100);
  const figures = {
    latencyMs: 100, medianMs: wall, tries: cycles.map((c) => c.durationMs), limitMs, sequentialMs: sequential.durationMs,
    speedup: Number((sequential.durationMs / wall).toFixed(1)), summary: cycles[0],
  };
  return {
    figures,
    row: {
      scenario: '4. one full cycle, 100 tasks to send and 100 in flight to check, 100 ms API latency (default profile: 10 / 50 in flight)',
      ours: `${wall} ms median of ${tries} (limit ${limitMs} ms; ${cycles[0].dispatched} dispatched, ${cycles[0].checked} checked)`,
      note: '~4 s',
      baseline: `sequential (1 / 1 in flight) ${sequential.durationMs} ms → ${figures.speedup}× slower`,
      target: `under the note's ~4 s: ${wall < 4000 ? 'met' : 'NOT met'}`,
    },
  };
}

export async function measureRoundTrips(bench: Bench): Promise<Measured> {
  bench.emu.latencyMs = 0;
  const trips: Record<string, number> = {};
  for (const batch of [10, 100, 1000]) {
    const config = { ...bench.config, batchSize: batch, dispatchConcurrency: 50, statusConcurrency: 100 };
    trips[batch] = (await cycleOnce(bench, config, batch)).roundTrips;
  }
  await clearRuns(bench.pool);
  trips.idle = (await tick({ config: bench.config, pool: bench.pool, executors: bench.executors }, { budgetMs: 0 })).roundTrips;
  return {
    figures: trips,
    row: {
      scenario: '6. database round trips per cycle, batch 10 / 100 / 1000, and an idle cycle (empty queue)',
      ours: `${trips[10]} / ${trips[100]} / ${trips[1000]}; idle ${trips.idle}`,
      note: 'constant in the batch',
      baseline: `N+1 would be ~${10 * 3} / ${100 * 3} / ${1000 * 3}`,
      target: `the same at every batch: ${trips[10] === trips[100] && trips[100] === trips[1000] ? 'met' : 'NOT met'}`,
    },
  };
}
