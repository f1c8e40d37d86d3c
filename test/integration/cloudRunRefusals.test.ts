import { tick } from '../../shared/tick';
import { behaviourFromEnv, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { emulatorHarness, type Harness } from '../helpers/harness';

const JOBS = 'projects/demo/locations/us-central1/jobs';

/** What Cloud Run refuses or fails, through the tick: which refusals spend an attempt, end the task, or neither. */
describe('Cloud Run refusals and executions that never started, through the tick', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  emulatorHarness((started) => ({ emu, h } = started));
  const executionsOf = (runId: string) => emu.executions.filter((e) => e.env.TICKRUN_RUN_ID === runId);
  const workflow = (name: string, job: string, extra = '') =>
    h.apply(`name: ${name}\ndefaults: { retries: 3, backoff: 0s }\ntasks:\n  t: { job: ${JOBS}/${job}${extra} }\n  after: { job: ${JOBS}/${job}-after, depends_on: [t] }\n`);

  it('fails a task at once when its job does not exist, spending no retry, and says to create the job', async () => {
    emu.deleteJob(`${JOBS}/gone`);
    await workflow('missing-job', 'gone');
    const runsBefore = emu.calls.runJob;
    const runId = await h.trigger('missing-job');
    const run = await h.runToEnd(runId);
    expect(run.status).toBe('failed');
    const byName = (name: string) => h.tasks(runId).then((tasks) => tasks.find((task) => task.name === name)!);
    const [t, after] = [await byName('t'), await byName('after')];
    expect(t).toMatchObject({ status: 'failed', attempt: 1, executionName: null });
    expect(t.error).toMatch(new RegExp(`^dispatch failed: Cloud Run runJob ${JOBS}/gone: NOT_FOUND: .*; create the job ${JOBS}/gone`));
    expect(after.status).toBe('skipped');
    expect(emu.calls.runJob - runsBefore).toBe(1);
  });

  it('fails a task at once when tickrun may not run the job with overrides, naming the permissions to grant', async () => {
    emu.denyPermission(`${JOBS}/locked`, 'run.jobs.runWithOverrides');
    await workflow('no-permission', 'locked');
    const runId = await h.trigger('no-permission');
    const run = await h.runToEnd(runId);
    expect(run.status).toBe('failed');
    const t = (await h.tasks(runId)).find((task) => task.name === 't')!;
    expect(t).toMatchObject({ status: 'failed', attempt: 1 });
    expect(t.error).toContain("PERMISSION_DENIED: Permission 'run.jobs.runWithOverrides' denied on resource");
    expect(t.error).toMatch(/grant .*run\.jobs\.runWithOverrides on the job .*iam\.serviceAccounts\.actAs on its service account/);
    expect(run.error).toContain('run.jobs.runWithOverrides');
  });

  it.each([
    ['an access token that expired (UNAUTHENTICATED)', '401'],
    ['a concurrency conflict (ABORTED)', '409'],
  ] as const)('spends no attempt on %s: the same attempt is sent again and succeeds', async (_what, kind) => {
    await h.apply(`name: refused-${kind}\ntasks:\n  t: { job: ${JOBS}/transient-${kind} }\n`);
    const runId = await h.trigger(`refused-${kind}`);
    emu.setFaults({ rate: 1, kinds: [kind], rpcs: ['runJob'] });
    try {
      await tick(h.deps, { budgetMs: 0 });
    } finally {
      emu.setFaults(null);
    }
    const [refused] = await h.tasks(runId);
    expect(refused).toMatchObject({ status: 'queued', attempt: 0 });
    expect(refused.error).toMatch(/^dispatch refused, retrying: /);
    const run = await h.runToEnd(runId, { pauseMs: 200 });
    expect(run.status).toBe('success');
    expect((await h.tasks(runId))[0]).toMatchObject({ status: 'success', attempt: 1 });
    expect(executionsOf(runId).map((e) => e.env.TICKRUN_ATTEMPT)).toEqual(['1']);
  });

  it('fails an attempt whose execution could not start, naming the reason Cloud Run gives', async () => {
    emu.setBehaviour(({ job }) => (job.endsWith('/imageless')
      ? { outcome: 'failed', durationMs: 0, startFailure: { reason: 'CONTAINER_MISSING', message: 'Image us-docker.pkg.dev/demo/etl/imageless:latest not found.' } }
      : { outcome: 'success', durationMs: 0 }));
    try {
      await h.apply(`name: not-started\ntasks:\n  t: { job: ${JOBS}/imageless }\n`);
      const runId = await h.trigger('not-started');
      const run = await h.runToEnd(runId);
      expect(run.status).toBe('failed');
      expect((await h.tasks(runId))[0]).toMatchObject({
        status: 'failed', attempt: 1, error: 'CONTAINER_MISSING: Image us-docker.pkg.dev/demo/etl/imageless:latest not found. (no task ran)',
      });
    } finally {
      emu.setBehaviour(behaviourFromEnv);
    }
  });
});
