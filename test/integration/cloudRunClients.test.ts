import { JobsClient } from '@google-cloud/run';
import { PassThroughClient } from 'google-auth-library';
import { Type } from 'protobufjs';
import { createCloudRunClients } from '../../shared/executors/cloudRunClients';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';

const JOB = 'projects/demo/locations/us-central1/jobs/lean';

describe('the Cloud Run clients', () => {
  let emu: CloudRunEmulator;
  beforeAll(async () => {
    emu = await startCloudRunEmulator();
  });
  afterAll(() => emu.stop());

  /** protobufjs Type setups (code generation for a message type) while `fn` runs. */
  async function setups(fn: () => Promise<unknown>): Promise<number> {
    const spy = jest.spyOn(Type.prototype, 'setup');
    try {
      await fn();
      return spy.mock.calls.length;
    } finally {
      spy.mockRestore();
    }
  }
  const twenty = (runJob: () => Promise<unknown>) => Promise.all(Array.from({ length: 20 }, runJob));

  it('sets the Execution type up once, where the stock client sets it up again for every runJob answer', async () => {
    const url = new URL(`http://${emu.host}`);
    const stock = new JobsClient({
      fallback: true, protocol: 'http', apiEndpoint: url.hostname, port: Number(url.port),
      authClient: new PassThroughClient({ transporterOptions: { fetchImplementation: fetch } }) as never,
    });
    const { jobs, executions } = createCloudRunClients({ emulatorHost: emu.host });
    const run = (client: JobsClient) => () => client.runJob({ name: JOB }, { timeout: 5000 });
    // Warm both: the first calls set up every type they touch.
    await run(stock)();
    await run(jobs)();
    // The bug this guards against: the stock decoders regenerate the type's code on each answer.
    expect(await setups(() => twenty(run(stock)))).toBeGreaterThanOrEqual(20);
    expect(await setups(() => twenty(run(jobs)))).toBe(0);
    await Promise.all([stock.close(), jobs.close(), executions.close()]);
  });

  it('reads an operation\'s Execution with enum names, as getExecution gives them', async () => {
    const { jobs, executions, decodeExecution } = createCloudRunClients({ emulatorHost: emu.host });
    const [operation] = await jobs.runJob({ name: JOB }, { timeout: 5000 });
    const execution = operation.metadata as { name?: string; conditions?: { type?: string; state?: unknown }[] };
    expect(execution.name).toMatch(new RegExp(`^${JOB}/executions/lean-`));
    expect(execution.conditions?.find((c) => c.type === 'Started')?.state).toBe('CONDITION_SUCCEEDED');
    const [read] = await executions.getExecution({ name: execution.name! }, { timeout: 5000 });
    expect(read.conditions?.find((c) => c.type === 'Started')?.state).toBe('CONDITION_SUCCEEDED');
    // The bytes an operation carries decode to the same resource.
    const { protos } = await import('@google-cloud/run');
    const bytes = protos.google.cloud.run.v2.Execution.encode({ name: execution.name, conditions: [{ type: 'Completed', state: 3 }] }).finish();
    expect(decodeExecution(bytes)).toEqual({ name: execution.name, conditions: [{ type: 'Completed', state: 'CONDITION_FAILED' }] });
    await Promise.all([jobs.close(), executions.close()]);
  });
});
