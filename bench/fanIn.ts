/**
 * Row 12: a fan-in (a map and a reduce): `b` of N tasks depending on `a` of N tasks. One `advance` with
 * half of `a` done, beside the statement it replaced (every waiting task asking about every task of the
 * fan-out: up to N × N/2 reads, depending on the plan) in the same run, with the table as a live run
 * leaves it and after ANALYZE; and a whole run of the pair through the tick at zero latency.
 */
import { parseConfig } from '../shared/config';
import { ADVANCE_SQL } from '../shared/steps/advance';
import { tick } from '../shared/tick';
import { applyWorkflows } from '../shared/workflows/apply';
import { parseWorkflow } from '../shared/workflows/parse';
import { triggerRun } from '../shared/operator/trigger';
import { expandPendingRuns } from '../shared/steps/expand';
import { clearRuns, contextFor, median, round, type Bench, type Measured } from './common';
import { instant } from './lifecycle';

/** The advance statement as it was, judging each waiting task on its own (the baseline). */
const PER_WAITING_TASK_SQL = `
with decided as (
  select t.id,
         case
           when exists (select 1 from tasks a
                        where a.run_id = t.run_id and a.name = any (t.ancestors)
                          and a.status in ('failed', 'cancelled')) then 'skipped'
           when not exists (select 1 from tasks d
                            where d.run_id = t.run_id and d.name = any (t.depends_on)
                              and d.status <> 'success') then 'queued'
         end as status
  from tasks t
  where t.status = 'waiting'
  for update of t skip locked
)
update tasks t
set status = d.status, next_attempt_at = now(), updated_at = now(),
    finished_at = case when d.status = 'skipped' then now() end,
    error = case when d.status = 'skipped' then 'a task it depends on did not succeed' end
from decided d
where t.id = d.id and d.status is not null
returning t.status`;

async function seedFanIn(bench: Bench, n: number): Promise<string> {
  await clearRuns(bench.pool);
  const yaml = `name: fanin\ntasks:\n  a: { job: projects/p/locations/l/jobs/a, count: ${n} }\n  b: { job: projects/p/locations/l/jobs/b, count: ${n}, depends_on: [a] }\n`;
  await applyWorkflows(bench.pool, [parseWorkflow(yaml, '/bench/fanin.yaml')]);
  return (await triggerRun(bench.pool, 'fanin')).runId;
}

/** Median ms of `tries` runs of `sql`, each in a transaction rolled back so the state stays as it is. */
async function timeStatement(bench: Bench, sql: string, tries: number): Promise<{ medianMs: number; released: number }> {
  const client = await bench.pool.connect();
  const times: number[] = [];
  let released = 0;
  try {
    for (let i = 0; i < tries; i++) {
      await client.query('begin');
      const t0 = performance.now();
      released = (await client.query(sql)).rowCount ?? 0;
      times.push(performance.now() - t0);
      await client.query('rollback');
    }
  } finally {
    client.release();
  }
  return { medianMs: round(median(times), 1), released };
}

export async function measureFanIn(bench: Bench): Promise<Measured> {
  const n = bench.quick ? 2_000 : 5_000;
  // One advance over the fan-in with half of `a` done (nothing to release yet: the cost of waiting).
  const runId = await seedFanIn(bench, n);
  await expandPendingRuns(contextFor(bench, { ...bench.config, batchSize: 1000 }));
  await bench.pool.query("update tasks set status = 'success' where run_id = $1 and name = 'a' and task_index < $2", [runId, n / 2]);
  // First as a live run leaves the table (no ANALYZE since it expanded: autovacuum wakes once a minute),
  // then with its statistics.
  const tries = bench.quick ? 1 : 3;
  const fresh = { ours: await timeStatement(bench, ADVANCE_SQL, 5), before: await timeStatement(bench, PER_WAITING_TASK_SQL, tries) };
  await bench.pool.query('analyze tasks');
  const analyzed = { ours: await timeStatement(bench, ADVANCE_SQL, 5), before: await timeStatement(bench, PER_WAITING_TASK_SQL, tries) };
  // The whole map and reduce through the tick, with an executor answering in process.
  const wide = bench.quick ? 5_000 : 10_000;
  await seedFanIn(bench, wide);
  const config = parseConfig({ ...bench.env, TICKRUN_PROFILE: 'high_throughput' });
  const t0 = performance.now();
  let ticks = 0;
  for (let done = 0; done === 0; ticks++) {
    if (ticks >= 1000) throw new Error('the fan-in run did not end within 1000 ticks');
    const summary = await tick({ config, pool: bench.pool, executors: { ...bench.executors, cloudrun: instant } }, { budgetMs: 0 });
    done = summary.runsCompleted;
  }
  const runS = round((performance.now() - t0) / 1000, 2);
  await clearRuns(bench.pool);
  const speedup = (x: typeof fresh) => round(x.before.medianMs / x.ours.medianMs, 0);
  const figures = {
    n,
    fresh: { advanceMs: fresh.ours.medianMs, perWaitingTaskMs: fresh.before.medianMs, speedup: speedup(fresh) },
    analyzed: { advanceMs: analyzed.ours.medianMs, perWaitingTaskMs: analyzed.before.medianMs, speedup: speedup(analyzed) },
    run: { tasks: 2 * wide, seconds: runS, ticks },
  };
  return {
    figures,
    row: {
      scenario: `12. fan-in: ${n.toLocaleString('en')} tasks waiting on a fan-out of ${n.toLocaleString('en')}, half of it done; then a run of ${wide.toLocaleString('en')} + ${wide.toLocaleString('en')} at zero latency`,
      ours: `one advance ${fresh.ours.medianMs} ms as the run left the table, ${analyzed.ours.medianMs} ms after ANALYZE (medians of 5); the run ${runS} s in ${ticks} ticks (high_throughput, an executor answering in process)`,
      note: '—',
      baseline: `the statement it replaced, each waiting task judged on its own: ${fresh.before.medianMs} ms and ${analyzed.before.medianMs} ms (medians of ${tries}) → ours ${figures.fresh.speedup}× and ${figures.analyzed.speedup}× faster`,
      target: 'none set: grows with n, not n²',
    },
  };
}
