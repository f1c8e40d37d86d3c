import { job, startDashboard, type DashboardClient } from '../helpers/dashboard';
import { createHarness, type Harness } from '../helpers/harness';

// fan: 1,000 indexes and 3 attempts; after waits on it; more: 4 indexes, its first send failed.
const WIDE = `name: wide
tasks:
  fan: { job: ${job('fan')}, array: true, count: 1000, retries: 2 }
  more: { job: ${job('more')}, array: true, count: 4, retries: 1 }
  after: { job: ${job('after')}, depends_on: [fan] }
`;
const execution = (id: string, name: string) => `projects/demo/locations/us-central1/jobs/${id}/executions/${name}`;
const A = execution('fan', 'fan-a1');
const B = execution('fan', 'fan-b2');
const C = execution('fan', 'fan-c3');
const D = execution('more', 'more-d2');
// Failed attempt 1 (10 indexes, sent again as B); of those, still failing at attempt 2 (sent again as C).
const FAILED_ONCE = Array.from({ length: 10 }, (_, k) => 100 * k + 7);
const FAILED_TWICE = [7, 407, 907];

// The state a tick leaves mid-run: fan's first two executions ended (their history rows), its third in
// flight on 3 rows; more's first attempt was never sent, its second is half recorded (2 of its 4 rows
// told success from the Tasks API, 2 still on the execution).
const COLUMNS = `run_id, workflow, run_created_at, name, task_index, status, attempt, max_attempts, backoff_ms, depends_on, ancestors,
                 array_task, execution_name, claimed_at, dispatched_at, started_at, finished_at`;
const SEED_SQL = [
  `insert into tasks (${COLUMNS})
   select r.id, 'wide', r.created_at, 'fan', i,
          case when i = any($3) then 'running' else 'success' end,
          case when i = any($3) then 3 when i = any($2) then 2 else 1 end,
          3, 1000, '{}', '{}', true,
          case when i = any($3) then '${C}' when i = any($2) then '${B}' else '${A}' end,
          case when i = any($3) then '2026-03-01 10:20:00Z' when i = any($2) then '2026-03-01 10:10:00Z' else '2026-03-01 10:00:00Z' end::timestamptz,
          case when i = any($3) then '2026-03-01 10:20:02Z' when i = any($2) then '2026-03-01 10:10:02Z' else '2026-03-01 10:00:02Z' end::timestamptz,
          '2026-03-01 10:00:00Z',
          case when i = any($3) then null when i = any($2) then '2026-03-01 10:15:00Z' else '2026-03-01 10:05:00Z'::timestamptz + i * interval '1 ms' end
   from runs r, generate_series(0, 999) i where r.id = $1`,
  `insert into tasks (${COLUMNS})
   select r.id, 'wide', r.created_at, 'more', i, case when i < 2 then 'success' else 'running' end, 2, 2, 1000, '{}', '{}', true,
          '${D}', '2026-03-01 10:01:00Z', '2026-03-01 10:01:03Z', '2026-03-01 10:00:00Z', case when i < 2 then '2026-03-01 10:02:00Z'::timestamptz end
   from runs r, generate_series(0, 3) i where r.id = $1`,
  `insert into tasks (${COLUMNS})
   select r.id, 'wide', r.created_at, 'after', 0, 'waiting', 0, 1, 1000, '{fan}', '{fan}', false, null, null, null, null, null
   from runs r where r.id = $1`,
  // Each row of fan's executions is headed by the execution's lowest index.
  `update tasks t set array_head = h.id from tasks h
   where t.run_id = $1 and t.name = 'fan' and h.run_id = $1 and h.name = 'fan' and h.task_index = case when t.attempt = 1 then 0 else 7 end`,
  `insert into task_attempts (task_id, run_id, attempt, status, execution_name, claimed_at, dispatched_at, finished_at, error)
   select id, run_id, 1, case when task_index = any($2) then 'failed' else 'success' end, '${A}',
          '2026-03-01 10:00:00Z', '2026-03-01 10:00:02Z', '2026-03-01 10:05:00Z'::timestamptz + task_index * interval '1 ms',
          case when task_index = any($2) then format('Cloud Run task %s failed', task_index) end
   from tasks where run_id = $1 and name = 'fan'`,
  `insert into task_attempts (task_id, run_id, attempt, status, execution_name, claimed_at, dispatched_at, finished_at, error)
   select id, run_id, 2, case when task_index = any($3) then 'failed' else 'success' end, '${B}',
          '2026-03-01 10:10:00Z', '2026-03-01 10:10:02Z', '2026-03-01 10:15:00Z', null
   from tasks where run_id = $1 and name = 'fan' and task_index = any($2)`,
  `insert into task_attempts (task_id, run_id, attempt, status, execution_name, claimed_at, dispatched_at, finished_at, error)
   select id, run_id, 1, 'failed', null, '2026-03-01 10:00:00Z', null, '2026-03-01 10:00:01Z', 'not sent: PERMISSION_DENIED'
   from tasks where run_id = $1 and name = 'more'`,
  `insert into task_attempts (task_id, run_id, attempt, status, execution_name, claimed_at, dispatched_at, finished_at, error)
   select id, run_id, 2, 'success', '${D}', '2026-03-01 10:01:00Z', '2026-03-01 10:01:03Z', '2026-03-01 10:02:00Z', null
   from tasks where run_id = $1 and name = 'more' and task_index < 2`,
];

const links = (jobId: string, name: string) => ({
  consoleUrl: `https://console.cloud.google.com/run/jobs/executions/details/us-central1/${name}/tasks?project=demo`,
  logsUrl: expect.stringContaining(encodeURIComponent(`resource.labels.job_name="${jobId}"`)),
});

describe('the run page API: an array task as one node with its executions', () => {
  let h: Harness;
  let d: DashboardClient;
  let runId: string;

  beforeAll(async () => {
    h = await createHarness();
    await h.apply(WIDE);
    runId = await h.trigger('wide');
    await h.db.pool.query(`update runs set status = 'running', started_at = '2026-03-01 10:00:00Z' where id = $1`, [runId]);
    // Each statement takes the parameters it names, of $1 the run, $2 FAILED_ONCE, $3 FAILED_TWICE.
    const params = [runId, FAILED_ONCE, FAILED_TWICE];
    for (const sql of SEED_SQL) await h.db.pool.query(sql, params.slice(0, Math.max(...[...sql.matchAll(/\$(\d)/g)].map((m) => Number(m[1])))));
    d = await startDashboard(h);
  });
  afterAll(async () => {
    await d?.close();
    await h?.close();
  });

  it('counts the node by index and lists each execution: attempt, indexes, how they fared, in attempt order', async () => {
    const r = await d.get(`/api/runs/${runId}`);
    expect(r.status).toBe(200);
    const byName = Object.fromEntries(r.body.graph.map((n: any) => [n.name, n]));
    expect(byName.fan).toEqual({
      name: 'fan', dependsOn: [], executor: 'cloudrun', target: job('fan'), count: 1000,
      statuses: { success: 997, running: 3 },
      array: {
        executions: [
          { executionName: A, attempt: 1, indexes: 1000, statuses: { success: 990, failed: 10 }, sentAt: '2026-03-01T10:00:02.000Z', finishedAt: '2026-03-01T10:05:00.999Z', links: links('fan', 'fan-a1') },
          { executionName: B, attempt: 2, indexes: 10, statuses: { success: 7, failed: 3 }, sentAt: '2026-03-01T10:10:02.000Z', finishedAt: '2026-03-01T10:15:00.000Z', links: links('fan', 'fan-b2') },
          { executionName: C, attempt: 3, indexes: 3, statuses: { running: 3 }, sentAt: '2026-03-01T10:20:02.000Z', finishedAt: null, links: links('fan', 'fan-c3') },
        ],
      },
    });
    // A send that failed is an attempt without an execution; an execution half recorded counts its
    // ended indexes and those still on it together, and has not finished.
    expect(byName.more.statuses).toEqual({ success: 2, running: 2 });
    expect(byName.more.array.executions).toEqual([
      { executionName: null, attempt: 1, indexes: 4, statuses: { failed: 4 }, sentAt: null, finishedAt: '2026-03-01T10:00:01.000Z', links: null },
      { executionName: D, attempt: 2, indexes: 4, statuses: { success: 2, running: 2 }, sentAt: '2026-03-01T10:01:03.000Z', finishedAt: null, links: links('more', 'more-d2') },
    ]);
    // A plain task has no array part.
    expect(byName.after).toEqual({ name: 'after', dependsOn: ['fan'], executor: 'cloudrun', target: job('after'), count: 1, statuses: { waiting: 1 } });
    expect(r.body.run.tasks).toEqual({ success: 999, running: 5, waiting: 1 });
    // The rows stay paged: 200 of 1,005, whatever the executions counted.
    expect(r.body).toMatchObject({ taskCount: 1005 });
    expect(r.body.tasks).toHaveLength(200);
  });

  it('still shows each index with its own attempts, on the executions it was sent in', async () => {
    const r = await d.get(`/api/runs/${runId}?task=fan&status=running`);
    expect(r.body.tasks.map((t: any) => t.index)).toEqual(FAILED_TWICE);
    expect(r.body.tasks[0].attempts.map((a: any) => [a.attempt, a.status, a.executionName])).toEqual([[1, 'failed', A], [2, 'failed', B], [3, 'running', C]]);
    expect(r.body.tasks[0].attempts[0].error).toBe('Cloud Run task 7 failed');
  });

  it('gives an array task no executions before its run is expanded', async () => {
    const pending = await h.trigger('wide');
    const r = await d.get(`/api/runs/${pending}`);
    const fan = r.body.graph.find((n: any) => n.name === 'fan');
    expect(fan).toMatchObject({ count: 1000, statuses: {}, array: { executions: [] } });
    expect(r.body.graph.find((n: any) => n.name === 'after').array).toBeUndefined();
  });
});
