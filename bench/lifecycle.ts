/**
 * Row 9: lifecycle throughput at zero API latency: a run of N tasks from queued to success, ticked in
 * process with the high_throughput profile until the run is done, beside pg-boss 10 moving N jobs
 * through insert, fetch and complete in batches of the same size, on the same Postgres. Ours is measured
 * twice: through the Cloud Run client and the emulator (two HTTP calls a task, bound by the client), and
 * with an executor that answers in process, which leaves the work pg-boss does too: the queue in Postgres.
 */
import type PgBossType from 'pg-boss';
import { parseConfig } from '../shared/config';
import type { Executor } from '../shared/executors/executor';
import { tick } from '../shared/tick';
import { clearRuns, median, round, seedRun, type Bench, type Measured } from './common';

/** Seconds to tick a fresh run of `count` zero-length tasks to its end, and how many ticks it took. */
async function tickrunLifecycle(bench: Bench, count: number, executors = bench.executors): Promise<{ seconds: number; ticks: number; succeeded: number }> {
  const config = parseConfig({ ...bench.env, TICKRUN_PROFILE: 'high_throughput' });
  await clearRuns(bench.pool);
  const t0 = performance.now();
  await seedRun(bench, count, { durationMs: 0, expand: false, clear: false });
  let ticks = 0;
  let succeeded = 0;
  for (let done = 0; done === 0; ticks++) {
    if (ticks >= 1000) throw new Error(`the run did not end within 1000 ticks (${succeeded} succeeded)`);
    const summary = await tick({ config, pool: bench.pool, executors }, { budgetMs: 0 });
    done = summary.runsCompleted;
    succeeded += summary.succeeded;
  }
  return { seconds: (performance.now() - t0) / 1000, ticks, succeeded };
}

/**
 * An executor with no API behind it: every attempt starts at once and has succeeded by its first status
 * check. Zero latency and zero cost, so what is left is tickrun's own work in Postgres.
 */
export const instant: Executor = {
  dispatch: async (req) => `instant/${req.taskId}/${req.attempt}`,
  status: async () => ({ state: 'success' }),
  statusMany: async (names) => new Map(names.map((name) => [name, { state: 'success' as const }])),
  cancel: async () => {},
  findStarted: async (lost) => new Map(lost.map((attempt) => [attempt, null])),
};

/** Seconds for pg-boss to insert `count` jobs and fetch and complete them `batch` at a time. */
async function pgBossLifecycle(bench: Bench, count: number, batch: number, queue: string): Promise<{ seconds: number; completed: number }> {
  // Loaded from node_modules, not bundled: pg-boss reads its own files at start.
  const PgBoss = require('pg-boss') as typeof PgBossType;
  const boss = new PgBoss({ connectionString: bench.env.DATABASE_URL, schedule: false, supervise: false, max: 10 });
  boss.on('error', () => {});
  await boss.start();
  try {
    await boss.createQueue(queue);
    const t0 = performance.now();
    for (let sent = 0; sent < count; sent += batch) {
      await boss.insert(Array.from({ length: Math.min(batch, count - sent) }, (_, i) => ({ name: queue, data: { i: sent + i } })));
    }
    let completed = 0;
    for (let jobs = await boss.fetch(queue, { batchSize: batch }); jobs.length > 0; jobs = await boss.fetch(queue, { batchSize: batch })) {
      await boss.complete(queue, jobs.map((j) => j.id));
      completed += jobs.length;
    }
    return { seconds: (performance.now() - t0) / 1000, completed };
  } finally {
    await boss.stop({ graceful: false, wait: true });
  }
}

export async function measureLifecycle(bench: Bench): Promise<Measured> {
  bench.emu.latencyMs = 0;
  const count = bench.quick ? 5_000 : 10_000;
  const rounds = bench.quick ? 1 : 3;
  await tickrunLifecycle(bench, 1000, { ...bench.executors, cloudrun: instant }); // warm-up, as pg-boss's start is
  const ours = await tickrunLifecycle(bench, count);
  // Like for like, in alternating rounds (this machine's speed drifts from one second to the next): ours
  // with the in-process executor, then pg-boss on a fresh queue of its own. Medians, and the median of
  // each round's ratio.
  const queue: { seconds: number; ticks: number; succeeded: number; perS: number }[] = [];
  const boss: { seconds: number; completed: number; perS: number }[] = [];
  for (let i = 0; i < rounds; i++) {
    const q = await tickrunLifecycle(bench, count, { ...bench.executors, cloudrun: instant });
    queue.push({ ...q, seconds: round(q.seconds, 2), perS: round(q.succeeded / q.seconds, 0) });
    const b = await pgBossLifecycle(bench, count, 500, `bench-${i}`);
    boss.push({ ...b, seconds: round(b.seconds, 2), perS: round(b.completed / b.seconds, 0) });
  }
  await clearRuns(bench.pool);
  const oursPerS = round(ours.succeeded / ours.seconds, 0);
  const queuePerS = median(queue.map((q) => q.perS));
  const bossPerS = median(boss.map((b) => b.perS));
  const ratio = round(median(queue.map((q, i) => q.perS / boss[i].perS)), 2);
  const ticks = queue[0].ticks;
  const figures = {
    tasks: count, rounds, tickrun: { ...ours, seconds: round(ours.seconds, 2), perS: oursPerS },
    tickrunInstantExecutor: { perS: queuePerS, runs: queue },
    pgBoss: { perS: bossPerS, runs: boss, batch: 500 },
    ratio, ratioThroughEmulator: round(oursPerS / bossPerS, 2),
  };
  return {
    figures,
    row: {
      scenario: `9. lifecycle, ${count.toLocaleString('en')} tasks queued → success, zero API latency (high_throughput, ticks until the run ends)`,
      ours: `${queuePerS} tasks/s with an executor answering in process (median of ${rounds}: ${queue.map((q) => q.perS).join(', ')}; ${ticks} ticks); ` +
        `${oursPerS} tasks/s through the Cloud Run client and the emulator (${ours.ticks} ticks, ${round(ours.seconds, 1)} s)`,
      note: '—',
      baseline: `pg-boss 10.4.2, insert + fetch + complete by 500: ${bossPerS} jobs/s (median of ${rounds}: ${boss.map((b) => b.perS).join(', ')}; no API calls) → ours ${ratio}× in process (median of the rounds' ratios), ${figures.ratioThroughEmulator}× through the emulator`,
      target: `ahead of pg-boss, like for like (no API): ${ratio > 1 ? 'met' : 'NOT met'}`,
    },
  };
}
