/**
 * The dashboard's runs page at 1M tasks: the statement behind `GET /api/runs` (a page of 50 runs with
 * their task counts by status), on the first page, a page deep in the history (by cursor), and filtered
 * by workflow and by status; beside it the OFFSET paging it replaces, at the same depth. Also the run
 * page's reads (`GET /api/runs/:id`) for a run of 100 tasks. Only the statements are timed.
 */
import { getRunDetail } from '../shared/dashboard/runDetail';
import { RUN_COLUMNS, RUN_TASK_COUNTS, runListQuery, type RunFilter } from '../shared/model/runs';
import { clearRuns, median, quantile, round, type Bench, type Measured } from './common';

const TASKS_PER_RUN = 100;
const WORKFLOWS = 10;
const PAGE = 50;

// RUNS runs of WORKFLOWS workflows a minute apart, most finished, one in 20 failed; each with 100 tasks.
const SEED_SQL = [
  `insert into workflows (name, definition, hash)
   select 'dash-' || g, '{"name":"dash","dir":"/","tasks":{}}', 'h' from generate_series(0, ${WORKFLOWS - 1}) g`,
  `insert into runs (workflow, workflow_version, definition, status, created_at, started_at, finished_at)
select 'dash-' || (g % ${WORKFLOWS}), 1, '{"name":"dash","dir":"/","tasks":{}}',
       case when g % 20 = 0 then 'failed' when g < 5 then 'running' else 'success' end,
       now() - g * interval '1 minute', now() - g * interval '1 minute', now() - g * interval '1 minute' + interval '30 seconds'
from generate_series(0, $1::int - 1) g`,
  `insert into tasks (run_id, workflow, run_created_at, name, task_index, status, attempt, max_attempts, backoff_ms, finished_at)
select r.id, r.workflow, r.created_at, 't' || (i % 4), i,
       case when r.status = 'failed' and i % 10 = 0 then 'failed' when r.status = 'failed' and i % 10 = 1 then 'skipped'
            when r.status = 'running' and i % 2 = 0 then 'running' else 'success' end,
       1, 1, 1000, r.finished_at
from runs r cross join generate_series(0, ${TASKS_PER_RUN - 1}) i`,
];

/** Times `tries` runs of each statement after 5 unmeasured ones, interleaved so noise falls on all alike. */
async function timeStatements(bench: Bench, tries: number, statements: { text: string; values: unknown[] }[]): Promise<number[][]> {
  const client = await bench.pool.connect();
  try {
    const times: number[][] = statements.map(() => []);
    for (let i = -5; i < tries; i++) {
      for (const [k, s] of statements.entries()) {
        const t0 = performance.now();
        await client.query(s.text, s.values);
        if (i >= 0) times[k].push(performance.now() - t0);
      }
    }
    return times;
  } finally {
    client.release();
  }
}

// A fan-out of 10,000 tasks in one run, with a definition the run page can draw.
const WIDE_RUN_SQL = `
with run as (
  insert into runs (workflow, workflow_version, definition, status, created_at, started_at, finished_at)
  values ('dash-0', 1, '{"name":"dash","dir":"/","tasks":{"fan":{"executor":"cloudrun","job":"fan","count":10000,"dependsOn":[]}}}',
          'success', now() - interval '1 year', now() - interval '1 year', now() - interval '1 year' + interval '1 hour')
  returning id, workflow, created_at, finished_at
), tasks as (
  insert into tasks (run_id, workflow, run_created_at, name, task_index, status, attempt, max_attempts, backoff_ms, finished_at)
  select run.id, run.workflow, run.created_at, 'fan', i, 'success', 1, 1, 1000, run.finished_at from run, generate_series(0, 9999) i
)
select id from run`;

const figure = (xs: number[]) => ({ median: round(median(xs), 2), p99: round(quantile(xs, 0.99), 2) });

/** Seeds 1M tasks (100K with --quick), times the runs page's statements and the run page, then empties the tables. */
export async function measureDashboard(bench: Bench): Promise<Measured> {
  const tasks = bench.quick ? 100_000 : 1_000_000;
  const runs = tasks / TASKS_PER_RUN;
  const tries = bench.quick ? 50 : 200;
  await clearRuns(bench.pool);
  const seedStart = performance.now();
  for (const sql of SEED_SQL) await bench.pool.query(sql, sql.includes('$1') ? [runs] : []);
  // As autovacuum leaves tables after a bulk load: statistics and visibility map up to date.
  await bench.pool.query('vacuum analyze runs, tasks');
  const seedMs = performance.now() - seedStart;
  try {
    const depth = Math.floor(runs / 2);
    const { rows } = await bench.pool.query(
      `select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at, id from runs order by created_at desc, id desc offset $1 limit 1`,
      [depth - 1],
    );
    const after = { createdAt: rows[0].at, id: rows[0].id };
    const page = (f: Partial<RunFilter>) => runListQuery({ limit: PAGE, ...f });
    const offsetPage = { text: `select ${RUN_COLUMNS}, ${RUN_TASK_COUNTS} from runs r order by r.created_at desc, r.id desc offset $1 limit $2`, values: [depth, PAGE + 1] };
    const [first, deep, byWorkflow, byStatus, offset] = await timeStatements(bench, tries, [
      page({}),
      page({ after }),
      page({ workflow: 'dash-3', after }),
      page({ status: 'failed', after }),
      offsetPage,
    ]);
    // The run page, as the API reads it: one run of 100 tasks, and one fan-out of 10,000 (its first page of 200).
    const runId = (await bench.pool.query(`select id from runs where status = 'failed' order by created_at desc limit 1`)).rows[0].id;
    const wideId = (await bench.pool.query(WIDE_RUN_SQL)).rows[0].id;
    const [detail, wide] = [runId, wideId].map(() => [] as number[]);
    for (let i = -5; i < tries; i++) {
      for (const [id, times] of [[runId, detail], [wideId, wide]] as const) {
        const t0 = performance.now();
        await getRunDetail(bench.pool, id);
        if (i >= 0) times.push(performance.now() - t0);
      }
    }
    const figures = {
      tasks, runs, tries, pageSize: PAGE, seedMs: round(seedMs, 0), depth,
      firstPageMs: figure(first), deepPageMs: figure(deep), byWorkflowMs: figure(byWorkflow), byStatusMs: figure(byStatus),
      offsetDeepPageMs: figure(offset), runPageMs: figure(detail), wideRunPageMs: figure(wide),
      keysetVsOffset: round(median(offset) / median(deep), 1),
    };
    const worst = Math.max(figures.firstPageMs.median, figures.deepPageMs.median, figures.byWorkflowMs.median, figures.byStatusMs.median);
    return {
      figures,
      row: {
        scenario: `11. dashboard runs page (${PAGE} runs with task counts), ${tasks.toLocaleString('en')} tasks in ${runs.toLocaleString('en')} runs`,
        ours: `first page ${figures.firstPageMs.median} ms, page ${depth.toLocaleString('en')} runs deep ${figures.deepPageMs.median} ms, by workflow ${figures.byWorkflowMs.median} ms, by status ${figures.byStatusMs.median} ms (medians of ${tries}); run page (100 tasks) ${figures.runPageMs.median} ms, a run of 10,000 tasks (first 200) ${figures.wideRunPageMs.median} ms`,
        note: '—',
        baseline: `OFFSET ${depth.toLocaleString('en')}: ${figures.offsetDeepPageMs.median} ms median → keyset ${figures.keysetVsOffset}× faster`,
        target: `every runs page ≤ 20 ms median: ${worst <= 20 ? 'met' : 'NOT met'}${bench.quick ? ' (quick: 100K tasks)' : ''}`,
      },
    };
  } finally {
    await clearRuns(bench.pool);
    await bench.pool.query(`delete from workflows where name like 'dash-%'`);
  }
}
