import { emptySummary, runCycle } from '../../shared/cycle';
import { countingDb, type Db } from '../../shared/db';
import { getRun } from '../../shared/model/runs';
import { cancelRun } from '../../shared/operator/cancel';
import { IN_FLIGHT_SQL } from '../../shared/steps/poll';
import { tick } from '../../shared/tick';
import type { CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { emulatorHarness, type Harness } from '../helpers/harness';

const JOB = 'projects/demo/locations/us-central1/jobs';

describe('the tick cycle against the Cloud Run emulator', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  emulatorHarness((started) => ({ emu, h } = started));
  const executionsOf = (runId: string) => emu.executions.filter((e) => e.env.TICKRUN_RUN_ID === runId);

  it('sends what it claimed while it checks what was already in flight, side by side', async () => {
    await h.apply(`name: overlap\ntasks:\n  t: { job: ${JOB}/overlap, count: 2, env: { EMU_DURATION_MS: "600000" } }\n`);
    await h.trigger('overlap');
    const oneAtATime = { ...h.deps, config: { ...h.config, batchSize: 1 } };
    await tick(oneAtATime, { budgetMs: 0 }); // the first task sent
    const calls = (rpc: string) => emu.calls[rpc] ?? 0;
    const before = { runJob: calls('runJob'), getExecution: calls('getExecution') };
    emu.latencyMs = 1000;
    try {
      const ticking = tick(oneAtATime, { budgetMs: 0 });
      // Every call is answered a second after it arrives. Had the check waited for the send, it would
      // arrive a second after the runJob: both arrive within that second.
      let both = false;
      for (const end = Date.now() + 900; !both && Date.now() < end; await new Promise((r) => setTimeout(r, 10))) {
        both = calls('runJob') > before.runJob && calls('getExecution') > before.getExecution;
      }
      expect(both).toBe(true);
      expect(await ticking).toMatchObject({ claimed: 1, dispatched: 1, checked: 1 });
    } finally {
      emu.latencyMs = 0;
    }
  });

  it('checks what was in flight when the cycle began, however late its read is answered', async () => {
    await h.apply(`name: late\ntasks:\n  t: { job: ${JOB}/late, count: 3, env: { EMU_DURATION_MS: "600000" } }\n`);
    const runId = await h.trigger('late');
    // The in-flight read waits 300 ms for its answer, as on a connection still being opened: by then this
    // cycle's sends are recorded, and they must not be taken for tasks that were in flight before it.
    const db = countingDb(h.db.pool);
    const slowRead: Db = {
      async query(text, values, name) {
        if (text === IN_FLIGHT_SQL) await new Promise((r) => setTimeout(r, 300));
        return db.query(text, values, name);
      },
      get roundTrips() {
        return db.roundTrips;
      },
      byName: db.byName,
    };
    const inFlight = async () => (await h.db.pool.query("select count(*)::int as n from tasks where status in ('dispatched', 'running')")).rows[0].n;
    const before = await inFlight();
    const summary = emptySummary();
    await runCycle(h.context({ db: slowRead }), summary);
    expect(summary).toMatchObject({ claimed: 3, dispatched: 3, checked: before });
    // Not checked yet: a check would have found them running.
    expect((await h.tasks(runId)).map((t) => t.status)).toEqual(['dispatched', 'dispatched', 'dispatched']);
  });

  it('runs a fan-out → join → final DAG to success, each task once, in dependency order', async () => {
    await h.apply(`
name: etl
defaults: { project: demo, region: us-central1, env: { EMU_DURATION_MS: "50" } }
tasks:
  extract: { job: extract, count: 4, args: ["--full"], task_count: 2 }
  join: { job: join, depends_on: [extract] }
  final: { job: ${JOB}/final, depends_on: [join], timeout: 10m }
`);
    const runId = await h.trigger('etl', { day: 'mon' });
    const run = await h.runToEnd(runId);
    expect(run.status).toBe('success');
    expect(run.tasks).toEqual({ success: 6 });
    const execs = executionsOf(runId);
    expect(execs.map((e) => `${e.job.split('/').pop()}:${e.env.TICKRUN_TASK_INDEX}`).sort()).toEqual(
      ['extract:0', 'extract:1', 'extract:2', 'extract:3', 'final:0', 'join:0'],
    );
    const extract = execs.filter((e) => e.job.endsWith('/extract'));
    expect(extract[0]).toMatchObject({ args: ['--full'], taskCount: 2 });
    expect(extract[0].env).toMatchObject({ TICKRUN_WORKFLOW: 'etl', TICKRUN_RUN_ID: runId, TICKRUN_ATTEMPT: '1', TICKRUN_PARAMS: '{"day":"mon"}', TICKRUN_TASK_NAME: 'extract' });
    expect(execs.find((e) => e.job.endsWith('/final'))!.timeoutSeconds).toBe(600);
    // The join started after every extract had finished, the final after the join.
    const join = execs.find((e) => e.job.endsWith('/join'))!;
    const final = execs.find((e) => e.job.endsWith('/final'))!;
    expect(join.createdAt).toBeGreaterThanOrEqual(Math.max(...extract.map((e) => e.finishedAt!)));
    expect(final.createdAt).toBeGreaterThanOrEqual(join.finishedAt!);
    // Every task records the execution that ran it.
    const tasks = await h.tasks(runId);
    expect(new Set(tasks.map((t) => t.executionName))).toEqual(new Set(execs.map((e) => e.name)));
    // The summaries add up: every task claimed, dispatched and finished once.
    const total = (k: 'claimed' | 'dispatched' | 'succeeded') => run.ticks.reduce((n, t) => n + t[k], 0);
    expect([total('claimed'), total('dispatched'), total('succeeded')]).toEqual([6, 6, 6]);
  });

  it('retries a failed attempt to success, with backoff', async () => {
    await h.apply(`
name: flaky
defaults: { project: demo, region: us-central1, retries: 2, backoff: 200ms }
tasks:
  load: { job: load, env: { EMU_FAIL: "attempts<3" } }
`);
    const runId = await h.trigger('flaky');
    const run = await h.runToEnd(runId);
    expect(run.status).toBe('success');
    const attempts = executionsOf(runId);
    expect(attempts.map((e) => [e.env.TICKRUN_ATTEMPT, e.outcome])).toEqual([['1', 'failed'], ['2', 'failed'], ['3', 'success']]);
    // The task id is the same across attempts; backoff doubles: ≥200 ms, then ≥400 ms.
    expect(new Set(attempts.map((e) => e.env.TICKRUN_TASK_ID)).size).toBe(1);
    expect(attempts[1].createdAt - attempts[0].finishedAt!).toBeGreaterThanOrEqual(200);
    expect(attempts[2].createdAt - attempts[1].finishedAt!).toBeGreaterThanOrEqual(400);
    expect((await h.tasks(runId))[0]).toMatchObject({ status: 'success', attempt: 3, error: null });
  });

  it('fails a run when a task fails its last attempt: dependents skipped, independent tasks still succeed', async () => {
    await h.apply(`
name: broken
defaults: { project: demo, region: us-central1, retries: 1, backoff: 0s }
tasks:
  bad: { job: bad, env: { EMU_FAIL: "1" } }
  child: { job: child, depends_on: [bad] }
  grandchild: { job: grandchild, depends_on: [child] }
  other: { job: other, env: { EMU_DURATION_MS: "300" } }
  after_other: { job: after-other, depends_on: [other] }
`);
    const runId = await h.trigger('broken');
    const run = await h.runToEnd(runId);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/^bad\[0\]: .*exit code 1/);
    const byName = Object.fromEntries((await h.tasks(runId)).map((t) => [t.name, t]));
    expect(byName.bad).toMatchObject({ status: 'failed', attempt: 2 });
    expect(byName.child.status).toBe('skipped');
    expect(byName.grandchild.status).toBe('skipped');
    expect(byName.other.status).toBe('success');
    expect(byName.after_other.status).toBe('success');
    expect(executionsOf(runId).map((e) => e.job.split('/').pop()).sort()).toEqual(['after-other', 'bad', 'bad', 'other']);
  });

  it('cancels an execution past its timeout and counts the attempt as failed', async () => {
    await h.apply(`
name: slow
tasks:
  wait: { job: ${JOB}/wait, timeout: 300ms, env: { EMU_DURATION_MS: "60000" } }
`);
    const cancelsBefore = emu.calls.cancelExecution ?? 0;
    const runId = await h.trigger('slow');
    const run = await h.runToEnd(runId, { pauseMs: 100 });
    expect(run.status).toBe('failed');
    expect((await h.tasks(runId))[0]).toMatchObject({ status: 'failed', error: 'timed out after 300ms' });
    expect(emu.calls.cancelExecution - cancelsBefore).toBe(1);
    expect(executionsOf(runId)[0].cancelled).toBe(true);
  });

  it('cancel stops a run: queued tasks cancelled, executions in flight cancelled through Cloud Run', async () => {
    await h.apply(`
name: long
defaults: { project: demo, region: us-central1 }
tasks:
  a: { job: a, count: 3, env: { EMU_DURATION_MS: "60000" } }
  b: { job: b, depends_on: [a] }
`);
    const runId = await h.trigger('long');
    await tick(h.deps, { budgetMs: 0 });
    await tick(h.deps, { budgetMs: 0 });
    expect((await h.tasks(runId)).filter((t) => t.status === 'running')).toHaveLength(3);
    const result = await cancelRun(h.db.pool, h.config, h.deps.executors, runId);
    expect(result).toMatchObject({ status: 'cancelled', executionsCancelled: 3, cancelledTasks: 4, errors: [] });
    expect(executionsOf(runId).every((e) => e.cancelled)).toBe(true);
    // The tasks on an execution end once a tick sees it stopped.
    await tick(h.deps, { budgetMs: 0 });
    expect((await h.tasks(runId)).map((t) => t.status)).toEqual(['cancelled', 'cancelled', 'cancelled', 'cancelled']);
    const run = await getRun(h.db.pool, runId);
    expect(run).toMatchObject({ status: 'cancelled' });
    // Later ticks change nothing and start nothing.
    const summary = await tick(h.deps, { budgetMs: 0 });
    expect(summary).toMatchObject({ claimed: 0, dispatched: 0, runsCompleted: 0 });
    expect(executionsOf(runId)).toHaveLength(3);
  });

  it('records an error dispatching one task on that task; the rest of the batch is dispatched', async () => {
    await h.apply(`
name: mixed
tasks:
  good: { job: ${JOB}/good, count: 3 }
  orphan: { job: no-project-anywhere }
`);
    const runId = await h.trigger('mixed');
    const run = await h.runToEnd(runId);
    expect(run.status).toBe('failed');
    const tasks = await h.tasks(runId);
    expect(tasks.filter((t) => t.name === 'good').map((t) => t.status)).toEqual(['success', 'success', 'success']);
    const orphan = tasks.find((t) => t.name === 'orphan')!;
    expect(orphan).toMatchObject({ status: 'failed', attempt: 1, executionName: null });
    expect(orphan.error).toMatch(/^dispatch failed: .*project/);
  });

  it('two ticks at once never start the same attempt twice', async () => {
    await h.apply(`
name: wide
defaults: { project: demo, region: us-central1, env: { EMU_DURATION_MS: "20" } }
tasks:
  fan: { job: fan, count: 60 }
  join: { job: join, depends_on: [fan] }
`);
    const runId = await h.trigger('wide');
    // Small batches, so both ticks find ready tasks in most cycles and compete for the same rows.
    const deps = { ...h.deps, config: { ...h.config, batchSize: 7 } };
    const claimedBy = [0, 0];
    for (let i = 0; i < 200; i++) {
      const [a, b] = await Promise.all([tick(deps, { budgetMs: 0 }), tick(deps, { budgetMs: 0 })]);
      claimedBy[0] += a.claimed;
      claimedBy[1] += b.claimed;
      if ((await getRun(h.db.pool, runId)).status !== 'running') break;
    }
    expect(claimedBy[0]).toBeGreaterThan(0);
    expect(claimedBy[1]).toBeGreaterThan(0);
    expect(claimedBy[0] + claimedBy[1]).toBe(61);
    expect((await getRun(h.db.pool, runId)).status).toBe('success');
    const starts = executionsOf(runId).map((e) => `${e.env.TICKRUN_TASK_ID}/${e.env.TICKRUN_ATTEMPT}`);
    expect(starts).toHaveLength(61);
    expect(new Set(starts).size).toBe(61);
  });
});
