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
import { clearRuns, round, seedRun, type Bench, type Measured } from './common';

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
const instant: Executor = {
  dispatch: async (req) => `instant/${req.taskId}/${req.attempt}`,
  status: async () => ({ state: 'success' }),
  statusMany: async (names) => new Map(names.map((name) => [name, { state: 'success' as const }])),
  cancel: async () => {},
  findStarted: async (lost) => new Map(lost.map((attempt) => [attempt, null])),
};

/** Seconds for pg-boss to insert `count` jobs and fetch and complete them `batch` at a time. */
async function pgBossLifecycle(bench: Bench, count: number, batch: number): Promise<{ seconds: number; completed: number }> {
  // Loaded from node_modules, not bundled: pg-boss reads its own files at start.
  const PgBoss = require('pg-boss') as typeof PgBossType;
  const boss = new PgBoss({ connectionString: bench.env.DATABASE_URL, schedule: false, supervise: false, max: 10 });
  boss.on('error', () => {});
  await boss.start();
  try {
    const queue = 'bench';
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
  await tickrunLifecycle(bench, 1000, { ...bench.executors, cloudrun: instant }); // warm-up, as pg-boss's start is
  const ours = await tickrunLifecycle(bench, count);
  const queue = await tickrunLifecycle(bench, count, { ...bench.executors, cloudrun: instant });
  const boss = await pgBossLifecycle(bench, count, 500);
  await clearRuns(bench.pool);
  const oursPerS = round(ours.succeeded / ours.seconds, 0);
  const queuePerS = round(queue.succeeded / queue.seconds, 0);
  const bossPerS = round(boss.completed / boss.seconds, 0);
  const figures = {
    tasks: count, tickrun: { ...ours, seconds: round(ours.seconds, 2), perS: oursPerS },
    tickrunInstantExecutor: { ...queue, seconds: round(queue.seconds, 2), perS: queuePerS },
    pgBoss: { ...boss, seconds: round(boss.seconds, 2), perS: bossPerS, batch: 500 },
    ratio: round(queuePerS / bossPerS, 2), ratioThroughEmulator: round(oursPerS / bossPerS, 2),
  };
  return {
    figures,
    row: {
      scenario: `9. lifecycle, ${count.toLocaleString('en')} tasks queued → success, zero API latency (high_throughput, ticks until the run ends)`,
      ours: `${queuePerS} tasks/s with an executor answering in process (${queue.ticks} ticks, ${round(queue.seconds, 1)} s); ` +
        `${oursPerS} tasks/s through the Cloud Run client and the emulator (${ours.ticks} ticks, ${round(ours.seconds, 1)} s)`,
      note: '—',
      baseline: `pg-boss 10.4.2, insert + fetch + complete by 500: ${bossPerS} jobs/s (no API calls) → ours ${figures.ratio}× in process, ${figures.ratioThroughEmulator}× through the emulator`,
      target: `ahead of pg-boss, like for like (no API): ${queuePerS > bossPerS ? 'met' : 'NOT met'}`,
    },
  };
}
