import crypto from 'node:crypto';
import { ADVANCE_SQL } from '../../shared/steps/advance';
import { CLAIM_SQL } from '../../shared/steps/claim';
import { COMPLETE_SQL } from '../../shared/steps/complete';
import { EXPAND_SQL } from '../../shared/steps/expand';
import { IN_FLIGHT_SQL } from '../../shared/steps/poll';
import { PROBE_SQL } from '../../shared/steps/probe';
import { REAP_SQL } from '../../shared/steps/reap';
import { RECORD_SQL } from '../../shared/steps/record';
import { DUE_SQL } from '../../shared/steps/schedule';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

// 100K tasks in 1,000 runs, most of them finished, as a table looks after some weeks of use.
const SEED = `
insert into workflows (name, definition, hash, next_slot_at) values ('w', '{"name":"w","dir":"/","tasks":{}}', 'h', now() + interval '1 hour');
insert into workflows (name, definition, hash, concurrency) values ('limited', '{"name":"limited","dir":"/","tasks":{}}', 'h', 5);
insert into concurrency_slots (workflow, slot) select 'limited', g from generate_series(1, 5) g;
insert into workflows (name, definition, hash, next_slot_at)
select 'w' || g, '{"name":"w","dir":"/","tasks":{}}', 'h', now() + g * interval '1 minute' from generate_series(1, 2000) g;
insert into runs (id, workflow, workflow_version, definition, status, created_at)
select gen_random_uuid(), 'w', 1, '{"name":"w","dir":"/","tasks":{}}',
       case when g % 100 = 0 then 'running' else 'success' end, now() - g * interval '1 minute'
from generate_series(1, 1000) g;
insert into regions (region) values ('p/l');
insert into tasks (run_id, workflow, run_created_at, limited, name, task_index, status, max_attempts, backoff_ms, attempt, execution_name, region, fair_key)
select r.id, 'w', r.created_at, false, 't', i,
       case when r.status = 'success' then 'success'
            else (array['waiting','queued','dispatched','running','success'])[1 + i % 5] end,
       1, 1000, 1, 'projects/p/locations/l/jobs/j/executions/e-' || r.id || '-' || i, 'p/l', i
from runs r cross join generate_series(0, 99) i;
analyze;`;

/** The claim's parameters: a batch of 100, a lease of 60 s, 600 run requests a minute, a cap of 1,000, no reserve. */
const CLAIM_PARAMS = [100, 60000, 600, 1000, 0];

/** A batch of `checked` outcomes, as record receives one: planned, never run. */
const checks = (n: number) =>
  JSON.stringify(Array.from({ length: n }, () => ({ id: crypto.randomUUID(), attempt: 1, outcome: 'checked', executionName: 'e' })));

describe('the tick statements use indexes, not a scan of tasks', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query(SEED);
    const { rows } = await db.pool.query('select count(*)::int as n from tasks');
    expect(rows[0].n).toBe(100_000);
  });
  afterAll(() => db.drop());

  it.each<[string, string, unknown[], RegExp | null]>([
    ['probe (is there work?)', PROBE_SQL, [new Date()], /workflows_due/],
    ['schedule (due workflows)', DUE_SQL, [new Date(), 100], /workflows_due/],
    ['expand', EXPAND_SQL, [100, 'p', 'l'], null],
    ['reap', REAP_SQL, [100, 60000], null],
    ['claim', CLAIM_SQL, CLAIM_PARAMS, null],
    ['poll (in-flight fetch)', IN_FLIGHT_SQL, [100, 600_000, 1200], null],
    ['record (a batch of 100 checks)', RECORD_SQL, [checks(100), '{}', 1200], null],
    ['advance', ADVANCE_SQL, [], null],
    ['complete', COMPLETE_SQL, [], null],
  ])('%s', async (_step, sql, params, index: RegExp | null) => {
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      // EXPLAIN (without ANALYZE) plans the statement without running it.
      const { rows } = await client.query(`explain ${sql}`, params);
      const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).not.toMatch(/Seq Scan on tasks/);
      expect(plan).toMatch(index ?? /Index (Only )?Scan|Bitmap Index Scan/);
    } finally {
      await client.query('rollback');
      client.release();
    }
  });

  it('claim reads the ready tasks in index order and stops at its batch, filtering by the run row by row', async () => {
    const { rows } = await db.pool.query(`explain ${CLAIM_SQL}`, CLAIM_PARAMS);
    const lines: string[] = rows.map((r) => r['QUERY PLAN']);
    // The `ready` CTE's part of the plan: the lines under it, indented deeper.
    const at = lines.findIndex((l) => /CTE ready/.test(l));
    const depth = (l: string) => l.search(/\S/);
    const end = lines.findIndex((l, i) => i > at && depth(l) <= depth(lines[at]));
    const ready = lines.slice(at, end).join('\n');
    expect(ready).toMatch(/Limit[\s\S]*LockRows[\s\S]*Index Scan using tasks_ready_fair on tasks/);
    // Ordered by the index, so no sort of the ready tasks and no join reading all of them first.
    expect(ready).not.toMatch(/Sort|Hash|Merge/);
  });

  it("poll reads an array execution through its head: the other rows of a 10,000-index execution are never read", async () => {
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      const { rows: [run] } = await client.query(`select id from runs where status = 'running' limit 1`);
      // One execution of 10,000 logical tasks, headed by index 0.
      await client.query(`
        with head as (select gen_random_uuid() as id)
        insert into tasks (id, run_id, workflow, run_created_at, limited, name, task_index, status, max_attempts, backoff_ms, attempt,
                           execution_name, region, fair_key, array_task, array_head)
        select case when i = 0 then h.id else gen_random_uuid() end, $1, 'w', now(), false, 'wide', i, 'running', 1, 1000, 1,
               'projects/p/locations/l/jobs/j/executions/wide', 'p/l', i, true, h.id
        from head h cross join generate_series(0, 9999) i`, [run.id]);
      // Checked less recently than any other, so this poll's batch of 100 holds it.
      await client.query(`update tasks set checked_at = now() where status in ('dispatched', 'running') and array_head is null`);
      await client.query('analyze tasks');
      const { rows } = await client.query(`explain (analyze, format json) ${IN_FLIGHT_SQL}`, [100, 600_000, 1200]);
      // Every scan of tasks in the plan: the rows it returned and those it read and dropped.
      const scans: { 'Relation Name'?: string; 'Actual Rows': number; 'Rows Removed by Filter'?: number; 'Actual Loops': number; Plans?: unknown[] }[] = [];
      const walk = (node: (typeof scans)[number]) => {
        if (node['Relation Name'] === 'tasks') scans.push(node);
        for (const child of (node.Plans ?? []) as (typeof scans)[number][]) walk(child);
      };
      walk(rows[0]['QUERY PLAN'][0].Plan);
      const read = scans.reduce((n, s) => n + (s['Actual Rows'] + (s['Rows Removed by Filter'] ?? 0)) * s['Actual Loops'], 0);
      expect(scans.length).toBeGreaterThan(0);
      expect(read).toBeLessThan(1000);
      // And the execution is one task to check: its head.
      const { rows: due } = await client.query(IN_FLIGHT_SQL, [100, 600_000, 1200]);
      expect(due.filter((t) => t.execution_name.endsWith('/wide')).map((t) => [t.task_index, t.array])).toEqual([[0, true]]);
    } finally {
      await client.query('rollback');
      client.release();
    }
  });
});
