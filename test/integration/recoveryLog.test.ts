import { setLogSink } from '../../shared/log';
import { tick } from '../../shared/tick';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { createHarness, type Harness } from '../helpers/harness';

const JOB = 'projects/demo/locations/us-central1/jobs/logged';

// Issue 15: "Structured logs for every recovery (what was ambiguous, how long until it was settled,
// adopted or re-queued), and the tick summary counts them."
describe('the log of a recovery', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  let lines: Record<string, unknown>[];
  beforeEach(async () => {
    emu = await startCloudRunEmulator();
    h = await createHarness({ CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_API_TIMEOUT: '', TICKRUN_DISPATCH_TIMEOUT: '1s', TICKRUN_POLL_INTERVAL: '500ms' });
    // The harness silences the log; this test reads it.
    lines = [];
    setLogSink((line) => lines.push(JSON.parse(line)));
  });
  afterEach(async () => {
    setLogSink(null);
    await h.close();
    await emu.stop();
  });

  const recoveries = () => lines.filter((l) => typeof l.recovery === 'string');

  it('says of a lost answer what was lost, how long it took to settle, and that the execution was adopted', async () => {
    await h.apply(`name: logged\ntasks:\n  t: { job: ${JOB} }\n`);
    const runId = await h.trigger('logged');
    // The runJob is carried out and its answer lost; the next ones are answered.
    emu.setFaults({ rate: 1, kinds: ['lost'], rpcs: ['runJob'] });
    const turnOff = setInterval(() => emu.calls.runJob > 0 && emu.setFaults(null), 5);
    const summary = await tick(h.deps, { budgetMs: 6000 }).finally(() => clearInterval(turnOff));
    expect(summary).toMatchObject({ ambiguous: 1, reconciled: 1, adopted: 1, requeued: 0, postponed: 0 });
    const [entry] = recoveries();
    expect(recoveries()).toHaveLength(1);
    expect(entry).toMatchObject({ severity: 'INFO', recovery: 'adopted', why: expect.stringMatching(/^dispatch answer lost, reconciling: Cloud Run runJob/) });
    // Settled once the 1 s deadline and the 1 s margin had passed, and within a cycle of that.
    expect(entry.unsettledMs).toBeGreaterThanOrEqual(2000);
    expect(entry.unsettledMs).toBeLessThan(3500);
    expect((entry['logging.googleapis.com/labels'] as Record<string, string>).run_id).toBe(runId);
    expect(entry.message).toMatch(/^lost claim of t\[0\] attempt 1 adopted projects\/demo\/locations\/us-central1\/jobs\/logged\/executions\//);
  });

  it('says of a lookup that failed that it is retried soon, and counts it postponed', async () => {
    await h.apply(`name: logged\ntasks:\n  t: { job: ${JOB} }\n`);
    await h.trigger('logged');
    emu.setFaults({ rate: 1, kinds: ['lost'], rpcs: ['runJob'] });
    const turnOff = setInterval(() => {
      // Once the runJob is lost, every listing is refused: the lookup fails.
      if (emu.calls.runJob > 0) emu.setFaults({ rate: 1, kinds: ['503'], rpcs: ['listExecutions'] });
    }, 5);
    const summary = await tick(h.deps, { budgetMs: 6000 }).finally(() => clearInterval(turnOff));
    expect(summary.postponed).toBeGreaterThan(0);
    expect(summary.adopted).toBe(0);
    const postponed = recoveries().filter((l) => l.recovery === 'postponed');
    expect(postponed).toHaveLength(summary.postponed);
    expect(postponed[0]).toMatchObject({ severity: 'INFO', why: expect.stringMatching(/^dispatch answer lost/) });
    expect(postponed[0].message).toMatch(/lookup retried in \d+ ms/);
  });
});
