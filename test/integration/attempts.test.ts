import { getRunDetail } from '../../shared/dashboard/runDetail';
import { claimReadyTasks } from '../../shared/steps/claim';
import { RECORD_SQL, recordOutcomes } from '../../shared/steps/record';
import { tick } from '../../shared/tick';
import type { TickContext } from '../../shared/context';
import type { CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { emulatorHarness, type Harness } from '../helpers/harness';

const JOBS = 'projects/demo/locations/us-central1/jobs';

/** Each attempt's history, and what the record statement does with the outcomes of one. */
describe('attempts', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  let ctx: TickContext;
  emulatorHarness((started) => {
    ({ emu, h } = started);
    ctx = h.context();
  });

  const attemptRows = async (taskId: string) =>
    (await h.db.pool.query('select attempt, status, execution_name, dispatched_at, finished_at from task_attempts where task_id = $1 order by attempt', [taskId])).rows;

  /** Ticks until the task has left flight (it is queued again, or ended). */
  async function tickUntilLanded(runId: string): Promise<void> {
    for (let i = 0; i < 20; i++) {
      await tick(h.deps, { budgetMs: 0 });
      const [task] = await h.tasks(runId);
      if (!['claimed', 'dispatched', 'running'].includes(task.status)) return;
    }
    throw new Error('the task did not land');
  }

  it('a retry whose dispatch fails shows no execution of the attempt before it', async () => {
    await h.apply(`name: flaky\ntasks:\n  t: { job: ${JOBS}/flaky, retries: 1, backoff: 0s, env: { EMU_FAIL: "1" } }\n`);
    const runId = await h.trigger('flaky');
    await tickUntilLanded(runId); // attempt 1 ran and failed: queued again
    const [task] = await h.tasks(runId);
    expect(task).toMatchObject({ status: 'queued', attempt: 1 });
    const [claimed] = await claimReadyTasks(ctx);
    expect(claimed).toMatchObject({ id: task.id, attempt: 2 });
    // The executor refused attempt 2 outright (not a fault): a failed attempt that never had an execution.
    await recordOutcomes(ctx.db, [{ id: task.id, attempt: 2, outcome: 'failed', leaseToken: claimed.leaseToken, error: 'dispatch failed: 400 invalid' }]);
    const rows = await attemptRows(task.id);
    expect(rows.map((r) => [r.attempt, r.status])).toEqual([[1, 'failed'], [2, 'failed']]);
    expect(rows[0].execution_name).toMatch(/\/jobs\/flaky\/executions\//);
    expect(rows[1]).toMatchObject({ execution_name: null, dispatched_at: null });
    expect(rows[1].finished_at).toBeInstanceOf(Date);
  });

  it('an attempt in flight is read from its task, and its end writes its one history row', async () => {
    await h.apply(`name: long\ntasks:\n  t: { job: ${JOBS}/long, env: { EMU_DURATION_MS: "600000" } }\n`);
    const runId = await h.trigger('long');
    await tick(h.deps, { budgetMs: 0 }); // sent
    await tick(h.deps, { budgetMs: 0 }); // checked: running
    const [task] = await h.tasks(runId);
    expect(task.status).toBe('running');
    expect(await attemptRows(task.id)).toEqual([]);
    const live = (await getRunDetail(h.db.pool, runId)).tasks[0].attempts;
    expect(live).toEqual([expect.objectContaining({ attempt: 1, status: 'running', executionName: task.executionName, finishedAt: null, error: null })]);
    expect(Date.parse(live[0].claimedAt!)).toBeLessThanOrEqual(Date.parse(live[0].sentAt!));

    const execution = emu.executions.find((e) => e.env.TICKRUN_RUN_ID === runId)!;
    Object.assign(execution, { finishedAt: Date.now() - 1, outcome: 'success' });
    await tick(h.deps, { budgetMs: 0 });
    const ended = (await getRunDetail(h.db.pool, runId)).tasks[0].attempts;
    expect(ended).toEqual([expect.objectContaining({ attempt: 1, status: 'success', executionName: task.executionName, claimedAt: live[0].claimedAt, sentAt: live[0].sentAt })]);
    expect(Date.parse(ended[0].finishedAt!)).toBeGreaterThanOrEqual(Date.parse(ended[0].sentAt!));
    expect((await attemptRows(task.id)).map((r) => r.status)).toEqual(['success']);
  });

  it('a check that changes nothing moves only checked_at', async () => {
    await h.apply(`name: quiet\ntasks:\n  t: { job: ${JOBS}/quiet, env: { EMU_DURATION_MS: "600000" } }\n`);
    const runId = await h.trigger('quiet');
    await tick(h.deps, { budgetMs: 0 });
    await tick(h.deps, { budgetMs: 0 });
    const read = () => h.db.pool.query('select status, attempt, updated_at, checked_at, error from tasks where run_id = $1', [runId]).then((r) => r.rows[0]);
    const before = await read();
    expect(before.status).toBe('running');
    const summary = await tick(h.deps, { budgetMs: 0 });
    expect(summary).toMatchObject({ checked: 1, succeeded: 0, failed: 0 });
    const after = await read();
    expect(after).toMatchObject({ status: 'running', attempt: 1, updated_at: before.updated_at, error: null });
    expect(after.checked_at.getTime()).toBeGreaterThan(before.checked_at.getTime());
  });

  it('an outcome recorded while another statement changes the same task is checked again against the change', async () => {
    await h.apply(`name: race\ntasks:\n  t: { job: ${JOBS}/race, env: { EMU_DURATION_MS: "600000" } }\n`);
    const runId = await h.trigger('race');
    await tick(h.deps, { budgetMs: 0 });
    const [task] = await h.tasks(runId);
    expect(task.status).toBe('dispatched');
    const outcome = (o: string, error: string | null = null) => [JSON.stringify([{ id: task.id, attempt: 1, outcome: o, executionName: task.executionName, error }]), '{}', 1200];
    // One statement records success and holds the row; another, read before it, records a failure.
    const first = await h.db.pool.connect();
    try {
      await first.query('begin');
      await first.query(RECORD_SQL, outcome('success'));
      const stale = recordOutcomes(ctx.db, [{ id: task.id, attempt: 1, outcome: 'failed', executionName: task.executionName!, error: 'late' }]);
      // The stale one waits on the row lock.
      await waitForLockWait(h);
      await first.query('commit');
      // It finds the task ended: its guard fails on the newest row, and it records nothing.
      expect(await stale).toEqual([]);
    } finally {
      first.release();
    }
    const [after] = await h.tasks(runId);
    expect(after).toMatchObject({ status: 'success', error: null });
    expect((await attemptRows(task.id)).map((r) => [r.attempt, r.status])).toEqual([[1, 'success']]);
  });
  describe('two statements recording the same tasks', () => {
    let tasks: { id: string; executionName: string | null }[];
    /** A `checked` outcome for each task, in the order given. */
    const checks = (order: typeof tasks) =>
      order.map((t) => ({ id: t.id, attempt: 1, outcome: 'checked' as const, executionName: t.executionName! }));
    const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : 1);

    beforeAll(async () => {
      await h.apply(`name: both\ntasks:\n  t: { job: ${JOBS}/both, count: 12, env: { EMU_DURATION_MS: "600000" } }\n`);
      const runId = await h.trigger('both');
      await tick(h.deps, { budgetMs: 0 });
      tasks = (await h.tasks(runId)).sort(byId);
      expect(tasks.map((t: any) => t.status)).toEqual(Array(12).fill('dispatched'));
    });

    it('lock the tasks in one order, whatever the order of the outcomes', async () => {
      const [lowest, highest] = [tasks[0], tasks[tasks.length - 1]];
      const holder = await h.db.pool.connect();
      const prober = await h.db.pool.connect();
      try {
        await holder.query('begin');
        await holder.query('select 1 from tasks where id = $1 for no key update', [lowest.id]);
        // Outcomes highest id first: a statement locking in their order would hold `highest` while it
        // waits for `lowest`.
        const recording = recordOutcomes(ctx.db, checks([...tasks].reverse()));
        await waitForLockWait(h);
        await prober.query('begin');
        await expect(prober.query('select 1 from tasks where id = $1 for no key update nowait', [highest.id])).resolves.toMatchObject({ rowCount: 1 });
        await prober.query('rollback');
        await holder.query('commit');
        await expect(recording).resolves.toEqual([]);
      } finally {
        // Ends both transactions on a failed expectation too, so the next test starts unlocked.
        await prober.query('rollback');
        await holder.query('rollback');
        holder.release();
        prober.release();
      }
    });

    it('a stale outcome waits on no task claimed again meanwhile', async () => {
      const [task] = tasks;
      // The task's attempt failed and was retried: another tick claimed attempt 2 and is recording its
      // dispatch, holding the row.
      await h.db.pool.query("update tasks set status = 'claimed', attempt = 2, lease_token = gen_random_uuid() where id = $1", [task.id]);
      const holder = await h.db.pool.connect();
      try {
        await holder.query('begin');
        await holder.query('select 1 from tasks where id = $1 for no key update', [task.id]);
        // A poll that read attempt 1 before all that reports on its execution now.
        const stale = recordOutcomes(ctx.db, [{ id: task.id, attempt: 1, outcome: 'failed', executionName: task.executionName!, error: 'late' }]);
        let timer: NodeJS.Timeout | undefined;
        const waited = new Promise((resolve) => (timer = setTimeout(() => resolve('still waiting after 3 s'), 3000)));
        expect(await Promise.race([stale, waited])).toEqual([]);
        clearTimeout(timer);
      } finally {
        await holder.query('rollback');
        holder.release();
        await h.db.pool.query("update tasks set status = 'dispatched', attempt = 1 where id = $1", [task.id]);
      }
    });

    it('in opposite orders at once never deadlock', async () => {
      // Two ticks checking the same executions, or a tick and `cancel`, record the same tasks at once.
      const forward = checks(tasks);
      const backward = checks([...tasks].reverse());
      const { rows: [before] } = await h.db.pool.query('select now() as at');
      // Without the lock pass, 40 rounds deadlocked in 4 runs of 6, 200 rounds in 6 of 6.
      for (let i = 0; i < 200; i++) {
        const results = await Promise.allSettled([recordOutcomes(ctx.db, forward), recordOutcomes(ctx.db, backward)]);
        expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      }
      // Every check was recorded, so both statements did take the rows they compete for.
      const { rows } = await h.db.pool.query('select count(*)::int as n from tasks where id = any ($1) and checked_at > $2', [tasks.map((t) => t.id), before.at]);
      expect(rows[0].n).toBe(12);
    });
  });
});

/** Waits until a record statement waits on a row lock. */
async function waitForLockWait(h: Harness): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const { rows } = await h.db.pool.query("select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%jsonb_to_recordset($1%'");
    if (rows[0].n > 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('no record statement came to wait on a lock');
}
