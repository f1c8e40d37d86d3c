import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createCloudRunClients } from '../../shared/executors/cloudRunClients';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { faultPicker, faultsPicker, type FaultPlan } from '../helpers/emulatorFaults';

const JOB = 'projects/p1/locations/europe-west1/jobs/nightly';
const run = (taskId: string) => ({ name: JOB, overrides: { containerOverrides: [{ env: [{ name: 'TICKRUN_TASK_ID', value: taskId }] }] } });

/**
 * The real client in REST mode, built as the executor builds it, with its deadline on every call. Not
 * gaxios's own `timeout`: it joins its timer to gax's signal with AbortSignal.any, and in a full CI run
 * that deadline once never fired, so a held call outlived the test (see the garbage-collection case).
 */
function client(emulator: CloudRunEmulator, timeoutMs: number) {
  const clients = createCloudRunClients({ emulatorHost: emulator.host });
  return {
    runJob: (request: ReturnType<typeof run>) => clients.jobs.runJob(request, clients.callOptions(timeoutMs)),
    close: async () => {
      await clients.jobs.close();
      await clients.executions.close();
    },
  };
}

describe('emulator faults', () => {
  let emulator: CloudRunEmulator;
  beforeEach(async () => {
    emulator = await startCloudRunEmulator();
  });
  afterEach(() => emulator.stop());

  it('hang: a call is held, not carried out, and ended by the client deadline; nothing is created', async () => {
    emulator.setFaults({ rate: 1, kinds: ['hang'], rpcs: ['runJob'] });
    const jobs = client(emulator, 300);
    const started = Date.now();
    await expect(jobs.runJob(run('h'))).rejects.toThrow();
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(emulator.injected.hang).toBe(1);
    expect(emulator.executions).toEqual([]);
    await jobs.close();
  });

  it('hang: the deadline holds while garbage is collected during the call', async () => {
    // Node 20 can collect a signal made by AbortSignal.any while it is still awaited, and its abort is
    // then never seen: with gaxios's own timeout this call was still held 3 s later. Ours must end.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    emulator.setFaults({ rate: 1, kinds: ['hang'], rpcs: ['runJob'] });
    const jobs = client(emulator, 300);
    const collecting = setInterval(gc, 20);
    let watch: NodeJS.Timeout | undefined;
    const started = Date.now();
    const outcome = await Promise.race([
      jobs.runJob(run('g')).then(() => 'answered', () => 'ended'),
      new Promise((resolve) => (watch = setTimeout(() => resolve('still held'), 3000))),
    ]).finally(() => {
      clearInterval(collecting);
      clearTimeout(watch);
    });
    expect(outcome).toBe('ended');
    expect(Date.now() - started).toBeLessThan(2000);
    await jobs.close();
  });

  it('hang: a call with no deadline does not keep stop() from ending', async () => {
    emulator.setFaults({ rate: 1, kinds: ['hang'] });
    const held = fetch(`http://${emulator.host}/v2/${JOB}:run`, { method: 'POST', body: '{}' }).then(() => 'answered', () => 'dropped');
    while (emulator.injected.hang !== 1) await new Promise((r) => setTimeout(r, 10));
    const started = Date.now();
    await emulator.stop();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await held).toBe('dropped');
    emulator = await startCloudRunEmulator(); // for afterEach
  });

  it('two plans at once: each faults its own calls, and the first that hits decides', async () => {
    const jobs = client(emulator, 2000);
    emulator.setFaults([{ rate: 1, kinds: ['503'], rpcs: ['getExecution'] }, { rate: 1, kinds: ['lost'], rpcs: ['runJob'] }]);
    await expect(jobs.runJob(run('l'))).rejects.toMatchObject({ code: 500 }); // carried out, answer lost
    expect(emulator.startsByAttempt().get('l/undefined')).toBe(1);
    const execution = await fetch(`http://${emulator.host}/v2/${emulator.executions[0].name}`);
    expect(execution.status).toBe(503);

    emulator.setFaults([{ rate: 1, kinds: ['429'] }, { rate: 1, kinds: ['lost'], rpcs: ['runJob'] }]);
    await expect(jobs.runJob(run('q'))).rejects.toMatchObject({ code: 429 }); // not carried out
    expect(emulator.startsByAttempt().has('q/undefined')).toBe(false);
    expect(emulator.injected).toMatchObject({ '429': 1, '503': 1, lost: 1 });
    await jobs.close();
  });

  it('two plans draw independently: a plan faults the same calls whether or not another plan hits first', () => {
    const all: FaultPlan = { rate: 0.1, kinds: ['429', '503', '500', 'reset', 'hang'], seed: 7 };
    const lost: FaultPlan = { rate: 0.05, kinds: ['lost'], rpcs: ['runJob'], seed: 8 };
    const rpcs = Array.from({ length: 2000 }, (_, i) => (i % 3 === 0 ? 'runJob' : 'getExecution'));
    const alone = faultPicker(lost);
    const both = faultsPicker([all, lost]);
    const lostAlone = rpcs.map((rpc) => alone(rpc));
    const picked = rpcs.map((rpc) => both(rpc));
    const allAlone = faultPicker(all);
    rpcs.forEach((rpc, i) => {
      const first = allAlone(rpc);
      expect(picked[i]?.kind).toBe(first ?? lostAlone[i]);
    });
    expect(picked.filter((p) => p?.kind === 'lost').length).toBeGreaterThan(10);
  });
});
