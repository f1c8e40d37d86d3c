import { ADVANCE_SQL, advanceWaitingTasks } from '../../shared/steps/advance';
import { expandPendingRuns } from '../../shared/steps/expand';
import { createHarness, type Harness } from '../helpers/harness';
import { analyzedPlan, buffersRead, rowsHandled } from '../helpers/db';

const JOB = 'projects/demo/locations/us-central1/jobs/work';

describe('advance', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(() => h.close());

  /** Triggers `workflow` and expands it; the run's id. */
  async function expanded(workflow: string): Promise<string> {
    const runId = await h.trigger(workflow);
    await expandPendingRuns(h.context());
    return runId;
  }

  const setStatus = (runId: string, name: string, status: string, where = 'true') =>
    h.db.pool.query(`update tasks set status = $3 where run_id = $1 and name = $2 and ${where}`, [runId, name, status]);

  async function statuses(runId: string): Promise<Record<string, Record<string, number>>> {
    const { rows } = await h.db.pool.query('select name, status, count(*)::int as n from tasks where run_id = $1 group by name, status', [runId]);
    const out: Record<string, Record<string, number>> = {};
    for (const r of rows) (out[r.name] ??= {})[r.status] = r.n;
    return out;
  }

  it('releases a fan-in only once every task of the fan-out succeeded', async () => {
    await h.apply(`name: fanin\ntasks:\n  a: { job: ${JOB}, count: 20 }\n  b: { job: ${JOB}, count: 30, depends_on: [a] }\n`);
    const runId = await expanded('fanin');
    await setStatus(runId, 'a', 'success', 'task_index < 19');
    expect(await advanceWaitingTasks(h.context())).toEqual({ released: 0, skipped: 0 });
    await setStatus(runId, 'a', 'success');
    expect(await advanceWaitingTasks(h.context())).toEqual({ released: 30, skipped: 0 });
    expect((await statuses(runId)).b).toEqual({ queued: 30 });
  });

  it('waits for every direct dependency, and skips everything downstream of a failure at once', async () => {
    await h.apply(
      `name: diamond\ntasks:\n  a: { job: ${JOB}, count: 3 }\n  c: { job: ${JOB} }\n` +
        `  b: { job: ${JOB}, count: 2, depends_on: [a, c] }\n  d: { job: ${JOB}, depends_on: [b] }\n`,
    );
    const first = await expanded('diamond');
    await setStatus(first, 'a', 'success');
    expect(await advanceWaitingTasks(h.context())).toEqual({ released: 0, skipped: 0 });
    await setStatus(first, 'c', 'success');
    expect(await advanceWaitingTasks(h.context())).toEqual({ released: 2, skipped: 0 });
    expect(await statuses(first)).toMatchObject({ b: { queued: 2 }, d: { waiting: 1 } });

    // One of a's tasks fails for good: b and d (which depends on a only through b) are skipped together.
    const second = await expanded('diamond');
    await setStatus(second, 'a', 'failed', 'task_index = 1');
    expect(await advanceWaitingTasks(h.context())).toEqual({ released: 0, skipped: 3 });
    expect(await statuses(second)).toMatchObject({ b: { skipped: 2 }, d: { skipped: 1 } });
  });

  it('leaves alone a task no longer waiting', async () => {
    await h.apply(`name: pair\ntasks:\n  a: { job: ${JOB} }\n  b: { job: ${JOB}, depends_on: [a] }\n`);
    const runId = await expanded('pair');
    await setStatus(runId, 'a', 'success');
    await setStatus(runId, 'b', 'cancelled');
    expect(await advanceWaitingTasks(h.context())).toEqual({ released: 0, skipped: 0 });
    expect((await statuses(runId)).b).toEqual({ cancelled: 1 });
  });

  it('leaves the tasks another tick is moving to it, without waiting for it', async () => {
    await h.apply(`name: race\ntasks:\n  a: { job: ${JOB} }\n  b: { job: ${JOB}, count: 4, depends_on: [a] }\n`);
    const runId = await expanded('race');
    await setStatus(runId, 'a', 'success');
    const [first, second] = [await h.db.pool.connect(), await h.db.pool.connect()];
    try {
      await first.query('begin');
      expect((await first.query(ADVANCE_SQL)).rowCount).toBe(4);
      // The first has not committed: the second skips its rows at once instead of queueing behind them.
      await second.query("set lock_timeout = '2s'");
      expect((await second.query(ADVANCE_SQL)).rowCount).toBe(0);
      await first.query('commit');
      expect((await second.query(ADVANCE_SQL)).rowCount).toBe(0);
      expect((await statuses(runId)).b).toEqual({ queued: 4 });
    } finally {
      first.release();
      second.release();
    }
  });

  // A fan-in of n tasks on a fan-out of n, half of the fan-out done: the statement's reads, counted in
  // buffers by EXPLAIN ANALYZE, must grow with n, not with n².
  it('reads a fan-in in proportion to its size', async () => {
    async function buffersAt(n: number): Promise<number> {
      const name = `scale${n}`;
      await h.apply(`name: ${name}\ntasks:\n  a: { job: ${JOB}, count: ${n} }\n  b: { job: ${JOB}, count: ${n}, depends_on: [a] }\n`);
      const runId = await expanded(name);
      await setStatus(runId, 'a', 'success', `task_index < ${n / 2}`);
      const read = buffersRead(await analyzedPlan(h.db.pool, ADVANCE_SQL));
      // Out of the way of the next size: nothing of this run waits any more.
      await h.db.pool.query("update tasks set status = 'cancelled' where run_id = $1", [runId]);
      return read;
    }
    const small = await buffersAt(300);
    const large = await buffersAt(2400);
    // 8× the tasks: about 8× the reads when linear (a plan that changes with the size moves it a little),
    // 64× when every waiting task reads the fan-out again.
    expect(large / small).toBeLessThan(20);
  });

  it('handles a fan-in in proportion to its size whatever statistics the table was left with', async () => {
    // Statistics of a large table that was then emptied (as a bench, or a purge, leaves them).
    const own = await createHarness();
    try {
      await own.apply(`name: old\ntasks:\n  a: { job: ${JOB}, count: 10000 }\n  b: { job: ${JOB}, count: 10000 }\n`);
      await own.trigger('old');
      await expandPendingRuns(own.context());
      await own.db.pool.query("update tasks set status = 'success'");
      await own.db.pool.query('analyze tasks');
      await own.db.pool.query('truncate runs, tasks, task_attempts cascade');
      // The rows each plan node handled, not buffers: re-reading kept decisions costs no buffer.
      async function handledAt(n: number): Promise<number> {
        const name = `left${n}`;
        await own.apply(`name: ${name}\ntasks:\n  a: { job: ${JOB}, count: ${n} }\n  b: { job: ${JOB}, count: ${n}, depends_on: [a] }\n`);
        const runId = await own.trigger(name);
        await expandPendingRuns(own.context());
        await own.db.pool.query("update tasks set status = 'success' where run_id = $1 and name = 'a' and task_index < $2", [runId, n / 2]);
        const handled = rowsHandled(await analyzedPlan(own.db.pool, ADVANCE_SQL));
        await own.db.pool.query('truncate runs, tasks, task_attempts cascade');
        return handled;
      }
      const small = await handledAt(300);
      const large = await handledAt(2400);
      // 8× the tasks: about 8× the rows when linear; 64× when the decisions are read again for every
      // waiting task (as a nested loop over an aggregate that was not kept did, on these statistics).
      expect(large / small).toBeLessThan(20);
    } finally {
      await own.close();
    }
  });
});
