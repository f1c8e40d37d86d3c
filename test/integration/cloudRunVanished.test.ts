import { everyCall } from '../../shared/config';
import { createCloudRunExecutor } from '../../shared/executors/cloudRun';
import { tick } from '../../shared/tick';
import { ExecutorFault, type DispatchRequest, type Executor } from '../../shared/executors/executor';
import { CLOUD_RUN_RETENTION, startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { emulatorHarness, type Harness } from '../helpers/harness';

const JOBS = 'projects/p1/locations/europe-west1/jobs';

const request = (job: string, taskId: string, env: Record<string, string> = {}): DispatchRequest => ({
  taskId, runId: 'r1', workflow: 'wf', taskName: 't', index: 0, attempt: 1, params: {},
  spec: { executor: 'cloudrun', job, count: 1, env, dependsOn: [], ancestors: [], retries: 0, backoffMs: 0 }, workflowDir: '/tmp',
});
/** Starts an execution of `job` the way another caller would: jobs.run with no overrides. */
const runElsewhere = (emu: CloudRunEmulator, job: string) => fetch(`http://${emu.host}/v2/${job}:run`, { method: 'POST', body: '{}' });

describe('an execution Cloud Run no longer has', () => {
  let emu: CloudRunEmulator;
  let executor: Executor;
  beforeAll(async () => {
    emu = await startCloudRunEmulator();
    executor = createCloudRunExecutor({ emulatorHost: emu.host, timeouts: everyCall(5000) });
  });
  afterEach(() => {
    emu.setRetention(CLOUD_RUN_RETENTION);
    emu.setFaults(null);
  });
  afterAll(() => emu.stop());

  it('keeps every execution under the documented retention, and past a smaller one only the newest completed and those in flight', async () => {
    const job = `${JOBS}/retained`;
    const running = await executor.dispatch(request(job, 'long', { EMU_DURATION_MS: '60000' }));
    const done = [];
    for (let i = 0; i < 4; i++) done.push(await executor.dispatch(request(job, `short-${i}`)));
    const listed = async () => ((await (await fetch(`http://${emu.host}/v2/${job}/executions`)).json()) as { executions: { name: string }[] }).executions.map((e) => e.name);
    expect(await listed()).toEqual([...done].reverse().concat(running));
    emu.setRetention({ completed: 2, days: 0 });
    expect(await listed()).toEqual([done[3], done[2], running]);
    expect((await fetch(`http://${emu.host}/v2/${done[0]}`)).status).toBe(404);
  });

  it('calls an execution pruned from a job that exists ended with its outcome unknown, never to be retried', async () => {
    const job = `${JOBS}/pruned`;
    const first = await executor.dispatch(request(job, 'first'));
    await runElsewhere(emu, job);
    emu.setRetention({ completed: 1, days: 0 });
    const status = await executor.status(first);
    expect(status).toMatchObject({ state: 'failed', outcomeUnknown: true });
    expect((status as { error: string }).error).toBe(
      `execution ${first} ended, but Cloud Run no longer keeps it (a job keeps its last 1,000 completed executions and those of the last 7 days): ` +
        'whether it succeeded is unknown, so it is not retried; see its logs, then retry the run if it must run again',
    );
  });

  it('calls an execution of a deleted job gone with its job, its outcome unknown, never to be retried', async () => {
    const job = `${JOBS}/deleted`;
    const name = await executor.dispatch(request(job, 'orphaned', { EMU_DURATION_MS: '60000' }));
    emu.deleteJob(job);
    const statuses = await executor.statusMany([name], 4);
    expect(statuses.get(name)).toEqual({
      state: 'failed', outcomeUnknown: true,
      error: `execution ${name} is gone with its job ${job}, which no longer exists: whether it succeeded is unknown, so it is not retried; see its logs, then retry the run if it must run again`,
    });
  });

  it('asks jobs.get once per job for the executions of one status check that are gone', async () => {
    const job = `${JOBS}/swept`;
    // Two of a job's executions are read one by one (fewer than it takes to list them), both gone.
    const gone = [await executor.dispatch(request(job, 'swept-a')), await executor.dispatch(request(job, 'swept-b'))];
    await runElsewhere(emu, job);
    emu.setRetention({ completed: 1, days: 0 });
    const before = emu.calls.getJob ?? 0;
    const statuses = await executor.statusMany(gone, 4);
    for (const name of gone) expect(statuses.get(name)).toMatchObject({ state: 'failed', outcomeUnknown: true });
    expect((emu.calls.getJob ?? 0) - before).toBe(1);
  });

  it('leaves an execution it cannot find unread while its job cannot be read', async () => {
    const job = `${JOBS}/unreadable`;
    const first = await executor.dispatch(request(job, 'unreadable'));
    await runElsewhere(emu, job);
    emu.setRetention({ completed: 1, days: 0 });
    emu.setFaults({ rate: 1, kinds: ['503'], rpcs: ['getJob'] });
    await expect(executor.status(first)).rejects.toBeInstanceOf(ExecutorFault);
    emu.denyPermission(job, 'run.jobs.get');
    emu.setFaults(null);
    await expect(executor.status(first)).rejects.toThrow(`Cloud Run getJob ${job}: PERMISSION_DENIED`);
  });
});

describe('an execution Cloud Run no longer has, through the tick', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  emulatorHarness((started) => ({ emu, h } = started));

  it('ends its task failed with the outcome unknown, its retries unspent, and skips its dependents', async () => {
    const job = `${JOBS}/fan-out`;
    await h.apply(`name: outage\ntasks:\n  t: { job: ${job}, retries: 2, backoff: 100ms, env: { EMU_DURATION_MS: "50" } }\n  after: { job: ${JOBS}/after, depends_on: [t] }\n`);
    const runId = await h.trigger('outage');
    await tick(h.deps, { budgetMs: 0 });
    const [sent] = (await h.tasks(runId)).filter((t) => t.name === 't');
    expect(sent.status).toBe('dispatched');
    // Before the next tick comes, the execution ends and newer ones push it past retention.
    await new Promise((r) => setTimeout(r, 100));
    await runElsewhere(emu, job);
    emu.setRetention({ completed: 1, days: 0 });
    const run = await h.runToEnd(runId);
    expect(run.status).toBe('failed');
    const tasks = await h.tasks(runId);
    const t = tasks.find((task) => task.name === 't')!;
    expect(t).toMatchObject({ status: 'failed', attempt: 1, executionName: sent.executionName });
    expect(t.error).toMatch(/ended, but Cloud Run no longer keeps it .*whether it succeeded is unknown, so it is not retried/);
    expect(tasks.find((task) => task.name === 'after')!.status).toBe('skipped');
    expect(emu.executions.filter((e) => e.env.TICKRUN_RUN_ID === runId)).toHaveLength(1);
  });
});
