import { createCloudRunClients } from '../../shared/executors/cloudRunClients';
import { callError } from '../../shared/executors/cloudRunErrors';
import { ExecutorFault } from '../../shared/executors/executor';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';

// The emulator's model of Cloud Run's limits (test/helpers/emulatorQuotas.ts), through the real client.

const JOB = 'projects/p1/locations/europe-west1/jobs/nightly';
const OTHER_REGION_JOB = 'projects/p1/locations/us-central1/jobs/nightly';
const run = (job = JOB, durationMs = 0) => ({ name: job, overrides: { containerOverrides: [{ env: [{ name: 'EMU_DURATION_MS', value: String(durationMs) }] }] } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the emulator enforces Cloud Run’s quotas and its running-executions cap', () => {
  let emu: CloudRunEmulator;
  let clients: ReturnType<typeof createCloudRunClients>;
  beforeEach(async () => {
    emu = await startCloudRunEmulator();
    clients = createCloudRunClients({ emulatorHost: emu.host });
  });
  afterEach(async () => {
    await clients.jobs.close();
    await clients.executions.close();
    await emu.stop();
  });
  const runJob = (job = JOB, durationMs = 0) => clients.jobs.runJob(run(job, durationMs), clients.callOptions(2000));
  const getExecution = (name: string) => clients.executions.getExecution({ name }, clients.callOptions(2000));

  it('a run quota of N a minute accepts N, then answers 429 RESOURCE_EXHAUSTED naming the quota, which tickrun reads as a quota fault', async () => {
    emu.setQuotas({ runPerMinute: 3 });
    for (let i = 0; i < 3; i++) await runJob();
    const refused = await runJob().then(() => undefined, (err: unknown) => err);
    expect(refused).toMatchObject({ code: 429 });
    expect(String((refused as Error).message)).toContain("Quota exceeded for quota metric 'Job run requests' and limit 'Job run requests per minute per region' of service 'run.googleapis.com'");
    // The body as Cloud Run sends it, which the REST client keeps as it came.
    const body = JSON.parse((refused as { response: { data: string } }).response.data);
    expect(body.error).toMatchObject({ code: 429, status: 'RESOURCE_EXHAUSTED' });
    expect(body.error.details[0]).toMatchObject({ reason: 'RATE_LIMIT_EXCEEDED', metadata: { quota_limit_value: '3', quota_location: 'europe-west1', service: 'run.googleapis.com' } });
    const fault = callError('runJob', JOB, 2000, refused);
    expect(fault).toBeInstanceOf(ExecutorFault);
    expect((fault as ExecutorFault).kind).toBe('quota');
    expect(emu.executions).toHaveLength(3);
    expect(emu.throttled).toEqual({ run: 1, read: 0, running: 0 });
    expect(emu.calls.runJob).toBe(4);
    // Another region has a quota of its own.
    await runJob(OTHER_REGION_JOB);
    expect(emu.executions).toHaveLength(4);
  });

  it('the window rolls: a call is accepted again once the oldest accepted one has left it', async () => {
    emu.setQuotas({ runPerMinute: 2, windowMs: 600 });
    await runJob();
    await sleep(300);
    await runJob();
    await expect(runJob()).rejects.toMatchObject({ code: 429 });
    await sleep(350);
    // The first has left the window, the second not: one more, not two.
    await runJob();
    await expect(runJob()).rejects.toMatchObject({ code: 429 });
    expect(emu.executions).toHaveLength(3);
  });

  it('reads have a quota of their own, and a lowered quota applies at once to the calls already made', async () => {
    emu.setQuotas({ runPerMinute: 10, readPerMinute: 2 });
    const [op] = await runJob();
    const name = (op.metadata as { name: string }).name;
    await getExecution(name);
    await getExecution(name);
    await expect(getExecution(name)).rejects.toMatchObject({ code: 429, message: expect.stringContaining("'Read requests per minute per region'") });
    await runJob();
    emu.setQuotas({ runPerMinute: 2, readPerMinute: 2 });
    await expect(runJob()).rejects.toMatchObject({ code: 429 });
    expect(emu.throttled).toEqual({ run: 1, read: 1, running: 0 });
  });

  it('the cap refuses a run while that many of the region’s executions run, and accepts again when one ends', async () => {
    emu.setQuotas({ maxRunning: 2 });
    await runJob(JOB, 400);
    await runJob(JOB, 5000);
    await expect(runJob()).rejects.toMatchObject({ code: 429, message: expect.stringContaining('running job executions') });
    await runJob(OTHER_REGION_JOB, 5000);
    await sleep(450);
    await runJob();
    expect(emu.throttled.running).toBe(1);
    expect(emu.executions).toHaveLength(4);
  });

  it('is set and read by another process through the control surface, and off by default', async () => {
    for (let i = 0; i < 5; i++) await runJob();
    expect(emu.throttled).toEqual({ run: 0, read: 0, running: 0 });
    const control = `http://${emu.host}/_emulator`;
    expect((await fetch(`${control}/quotas`, { method: 'POST', body: JSON.stringify({ runPerMinute: 5 }) })).status).toBe(200);
    await expect(runJob()).rejects.toMatchObject({ code: 429 });
    const state = await (await fetch(`${control}/state`)).json();
    expect(state.throttled).toEqual({ run: 1, read: 0, running: 0 });
    await fetch(`${control}/quotas`, { method: 'POST', body: 'null' });
    await runJob();
  });
});
