/**
 * Rows 15–18: Cloud Run's limits with six ticks at once (issue 18), each against an emulator that enforces
 * them (test/helpers/emulatorQuotas.ts) and six `tickrun tick` processes replaced as they end, as
 * Cloud Scheduler and the function's instances would run them. The baseline, in the same run, is the same
 * code and workload with tickrun's own limits out of the way (a ceiling of 1,000,000 run requests a
 * minute, 10,000 executions): what the run budget and the cap change. Baselines that only refuse and retry
 * are measured over their first BASELINE_MS, which is enough to show their rate and refusals.
 */
import path from 'node:path';
import { startCloudRunEmulator, type CloudRunEmulator } from '../test/helpers/cloudRunEmulator';
import { peakRunning, startsPerMinute } from '../test/helpers/executionStats';
import { startTickFleet } from '../test/helpers/tickFleet';
import { triggerRun } from '../shared/operator/trigger';
import { applyWorkflows } from '../shared/workflows/apply';
import { parseWorkflow } from '../shared/workflows/parse';
import { clearRuns, round, sleep, type Bench, type Measured } from './common';

const TICKS = 6;
const CLI = path.join(process.cwd(), 'bin', 'tickrun.js');
const BASELINE_MS = 60_000;
/** tickrun's limits out of the way: what the baseline runs with. */
const NO_LIMITS = { TICKRUN_RUN_REQUESTS_PER_MINUTE: '1000000', TICKRUN_READ_REQUESTS_PER_MINUTE: '1000000', TICKRUN_MAX_RUNNING_EXECUTIONS: '10000' };

interface Outcome {
  emu: CloudRunEmulator;
  /** Run calls Cloud Run refused (429): every runJob that made no execution. */
  refused: number;
  tookMs: number;
  /** Executions of one attempt of one task, more than one. */
  duplicates: number;
  failed: number;
  ended: boolean;
}

const resetDatabase = (bench: Bench) => clearRuns(bench.pool);

async function applyFanOut(bench: Bench, name: string, count: number, durationMs: number, priority = 1): Promise<void> {
  const yaml = `name: ${name}\npriority: ${priority}\ntasks:\n  t: { job: projects/p/locations/l/jobs/${name}, count: ${count}, env: { EMU_DURATION_MS: "${durationMs}" } }\n`;
  await applyWorkflows(bench.pool, [parseWorkflow(yaml, `/bench/${name}.yaml`)]);
}

const runEnded = async (bench: Bench, runId: string) =>
  !['pending', 'running'].includes((await bench.pool.query('select status from runs where id = $1', [runId])).rows[0].status);

/**
 * Runs `workflow` (applied) with six ticks against an emulator set up by `prepare`, until its run ends or
 * `limitMs` has passed; `during` runs beside it (a quota lowered mid-run).
 */
async function runFleet(bench: Bench, opts: {
  workflow: string; env: Record<string, string>; limitMs: number;
  prepare?: (emu: CloudRunEmulator) => void; during?: (emu: CloudRunEmulator, started: number) => Promise<void>;
}): Promise<Outcome> {
  const emu = await startCloudRunEmulator();
  opts.prepare?.(emu);
  const { runId } = await triggerRun(bench.pool, opts.workflow);
  const started = Date.now();
  const fleet = startTickFleet(TICKS, { DATABASE_URL: bench.env.DATABASE_URL, TICKRUN_HOME: bench.env.TICKRUN_HOME, CLOUD_RUN_EMULATOR_HOST: emu.host, ...opts.env }, { budget: '55s', cli: CLI });
  const beside = opts.during?.(emu, started);
  // Awaited after the loop; until then this keeps its failure from being an unhandled rejection.
  beside?.catch(() => {});
  let ended = false;
  try {
    while (!(ended = await runEnded(bench, runId)) && Date.now() - started < opts.limitMs) await sleep(250);
    await beside;
  } finally {
    await fleet.stop();
  }
  const tookMs = Date.now() - started;
  const { rows } = await bench.pool.query("select count(*)::int as n from tasks where run_id = $1 and status = 'failed'", [runId]);
  const duplicates = [...emu.startsByAttempt().values()].filter((n) => n > 1).length;
  return { emu, refused: emu.calls.runJob - emu.executions.length, tookMs, duplicates, failed: rows[0].n, ended };
}

const pct = (part: number, whole: number) => round((100 * part) / Math.max(1, whole), 2);

/** Row 15: 5,000 tasks under a run quota of 600/min. */
export async function measureRunBudget(bench: Bench): Promise<Measured> {
  const tasks = bench.quick ? 1000 : 5000;
  const quota = 600;
  const prepare = (emu: CloudRunEmulator) => emu.setQuotas({ runPerMinute: quota });
  await resetDatabase(bench);
  await applyFanOut(bench, 'budget', tasks, 1000);
  const ours = await runFleet(bench, { workflow: 'budget', env: { TICKRUN_RUN_REQUESTS_PER_MINUTE: String(quota) }, limitMs: 30 * 60_000, prepare });
  const oursRate = startsPerMinute(ours.emu.executions);
  await ours.emu.stop();
  await resetDatabase(bench);
  await applyFanOut(bench, 'budget', tasks, 1000);
  const base = await runFleet(bench, { workflow: 'budget', env: NO_LIMITS, limitMs: BASELINE_MS, prepare });
  const baseRate = startsPerMinute(base.emu.executions);
  await base.emu.stop();
  const figures = {
    tasks, quota, ticks: TICKS,
    ours: { perMinute: round(oursRate), ofQuota: pct(oursRate, quota), runCalls: ours.emu.calls.runJob, refused: ours.refused, refusedPct: pct(ours.refused, ours.emu.calls.runJob), duplicates: ours.duplicates, failed: ours.failed, seconds: round(ours.tookMs / 1000), ended: ours.ended },
    baseline: { perMinute: round(baseRate), ofQuota: pct(baseRate, quota), runCalls: base.emu.calls.runJob, refused: base.refused, refusedPct: pct(base.refused, base.emu.calls.runJob), duplicates: base.duplicates, seconds: round(base.tookMs / 1000), started: base.emu.executions.length },
  };
  const met = ours.ended && figures.ours.ofQuota >= 95 && figures.ours.refusedPct <= 1 && ours.duplicates === 0 && ours.failed === 0;
  return {
    figures,
    row: {
      scenario: `15. ${tasks.toLocaleString('en')} tasks under a run quota of ${quota}/min, ${TICKS} ticks at once`,
      ours: `${figures.ours.perMinute}/min (${figures.ours.ofQuota}% of the quota), ${ours.refused} of ${ours.emu.calls.runJob} run calls refused (${figures.ours.refusedPct}%), ${ours.duplicates} duplicates, ${ours.failed} failed, ${figures.ours.seconds} s`,
      note: 'issue 18',
      baseline: `without the budget, its first ${BASELINE_MS / 1000} s: ${figures.baseline.perMinute}/min started, ${base.refused} of ${base.emu.calls.runJob} run calls refused (${figures.baseline.refusedPct}%)`,
      target: `≥ 95% of the quota, ≤ 1% refused, 0 duplicates: ${met ? 'met' : 'NOT met'}`,
    },
  };
}

/** Row 16: a cap of 200 running executions with 2,000 tasks. */
export async function measureRunningCap(bench: Bench): Promise<Measured> {
  const tasks = bench.quick ? 600 : 2000;
  const cap = 200;
  const durationMs = 10_000;
  // Cloud Run enforces the same cap: what tickrun does not hold back, it refuses.
  const prepare = (emu: CloudRunEmulator) => emu.setQuotas({ maxRunning: cap });
  await resetDatabase(bench);
  await applyFanOut(bench, 'capped', tasks, durationMs);
  const ours = await runFleet(bench, { workflow: 'capped', env: { TICKRUN_MAX_RUNNING_EXECUTIONS: String(cap), TICKRUN_RUN_REQUESTS_PER_MINUTE: '1000000' }, limitMs: 15 * 60_000, prepare });
  const oursPeak = peakRunning(ours.emu.executions);
  await ours.emu.stop();
  await resetDatabase(bench);
  await applyFanOut(bench, 'capped', tasks, durationMs);
  const base = await runFleet(bench, { workflow: 'capped', env: NO_LIMITS, limitMs: BASELINE_MS, prepare });
  const basePeak = peakRunning(base.emu.executions);
  await base.emu.stop();
  // The cap allows `cap` executions of `durationMs` at a time.
  const idealMs = (tasks / cap) * durationMs;
  const figures = {
    tasks, cap, durationMs, idealSeconds: idealMs / 1000,
    ours: { peak: oursPeak, seconds: round(ours.tookMs / 1000), ofIdeal: pct(idealMs, ours.tookMs), refused: ours.refused, failed: ours.failed, ended: ours.ended },
    baseline: { peak: basePeak, runCalls: base.emu.calls.runJob, refused: base.refused, refusedPct: pct(base.refused, base.emu.calls.runJob), started: base.emu.executions.length, seconds: round(base.tookMs / 1000) },
  };
  const met = ours.ended && oursPeak <= cap && ours.failed === 0 && figures.ours.ofIdeal >= 70;
  return {
    figures,
    row: {
      scenario: `16. a cap of ${cap} running executions, ${tasks.toLocaleString('en')} tasks of ${durationMs / 1000} s, ${TICKS} ticks`,
      ours: `peak ${oursPeak} running; done in ${figures.ours.seconds} s, ${figures.ours.ofIdeal}% of the rate the cap allows (${idealMs / 1000} s); ${ours.refused} refused, ${ours.failed} failed`,
      note: 'issue 18',
      baseline: `without the cap, its first ${BASELINE_MS / 1000} s: ${base.refused} of ${base.emu.calls.runJob} run calls refused by Cloud Run's cap (${figures.baseline.refusedPct}%)`,
      target: `peak ≤ ${cap}, ≥ 70% of the cap's rate: ${met ? 'met' : 'NOT met'}`,
    },
  };
}

/** Row 17: a 20-task run triggered after a 5,000-task one, equal priority. */
export async function measureFairShare(bench: Bench): Promise<Measured> {
  const big = bench.quick ? 1000 : 5000;
  const quota = 600;
  await resetDatabase(bench);
  await applyFanOut(bench, 'big', big, 1000);
  await applyFanOut(bench, 'small', 20, 1000);
  const pollMs = bench.config.pollIntervalMs;
  let triggeredAt = 0;
  let bigLeftAtTrigger = 0;
  let smallRun = '';
  let smallEndedAt = 0;
  const ours = await runFleet(bench, {
    workflow: 'big', env: { TICKRUN_RUN_REQUESTS_PER_MINUTE: String(quota) }, limitMs: 5 * 60_000,
    prepare: (emu) => emu.setQuotas({ runPerMinute: quota }),
    async during(emu, started) {
      // Bounded like the fleet's run: a row that cannot end fails, naming where it stopped.
      const giveUpAt = started + 5 * 60_000;
      const until = async (done: () => boolean | Promise<boolean>, what: string) => {
        while (!(await done())) {
          if (Date.now() > giveUpAt) throw new Error(`fair share: ${what} not reached in 5 minutes`);
          await sleep(100);
        }
      };
      await until(() => emu.executions.length >= 200, '200 executions of the big run');
      bigLeftAtTrigger = big - emu.executions.length;
      triggeredAt = Date.now();
      smallRun = (await triggerRun(bench.pool, 'small')).runId;
      await until(() => runEnded(bench, smallRun), 'the end of the small run');
      smallEndedAt = Date.now();
      // The big run's end is not what this row measures: cancel it.
      await bench.pool.query("update runs set status = 'cancelled', finished_at = now() where workflow = 'big' and status = 'running'");
    },
  });
  const small = ours.emu.executions.filter((e) => e.job.endsWith('/small'));
  const firstStartMs = Math.min(...small.map((e) => e.createdAt)) - triggeredAt;
  const bigStartedBySmallEnd = ours.emu.executions.filter((e) => e.job.endsWith('/big') && e.createdAt <= smallEndedAt).length;
  await ours.emu.stop();
  const rate = quota * 0.97;
  const figures = {
    big, small: 20, quota, pollMs, firstStartMs, smallSeconds: round((smallEndedAt - triggeredAt) / 1000),
    bigStartedBySmallEnd, bigLeftAtSmallEnd: big - bigStartedBySmallEnd,
    oldestFirstWouldStartAfterSeconds: round((bigLeftAtTrigger / rate) * 60),
  };
  const met = firstStartMs <= pollMs && figures.bigLeftAtSmallEnd > 0;
  return {
    figures,
    row: {
      scenario: `17. a 20-task run triggered after a ${big.toLocaleString('en')}-task one (equal priority, ${quota}/min)`,
      ours: `its first task started ${firstStartMs} ms after the trigger; all 20 done in ${figures.smallSeconds} s, while the big run still had ${figures.bigLeftAtSmallEnd.toLocaleString('en')} to start`,
      note: 'issue 18',
      baseline: `oldest first (before the fair order) it would have started after the big run's ${bigLeftAtTrigger.toLocaleString('en')} queued tasks: ~${figures.oldestFirstWouldStartAfterSeconds} s (computed at the budget's rate)`,
      target: `first start within one cycle (${pollMs / 1000} s), ends before the big run: ${met ? 'met' : 'NOT met'}`,
    },
  };
}

/** Row 18: the quota drops from 600 to 300/min a minute into the run. */
export async function measureQuotaDrop(bench: Bench): Promise<Measured> {
  const tasks = 1100;
  const [before, after] = [600, 300];
  const dropAfterMs = 60_000;
  const drop = async (emu: CloudRunEmulator, started: number) => {
    await sleep(started + dropAfterMs - Date.now());
    emu.setQuotas({ runPerMinute: after });
  };
  await resetDatabase(bench);
  await applyFanOut(bench, 'drop', tasks, 500);
  const refusedTimes: number[] = [];
  const ours = await runFleet(bench, {
    workflow: 'drop', env: { TICKRUN_RUN_REQUESTS_PER_MINUTE: String(before) }, limitMs: 10 * 60_000,
    prepare: (emu) => emu.setQuotas({ runPerMinute: before }),
    async during(emu, started) {
      await drop(emu, started);
      // Refusals as they happen: sampled every 250 ms from the emulator's counts.
      const end = started + dropAfterMs + 120_000;
      let last = emu.calls.runJob - emu.executions.length;
      while (Date.now() < end) {
        await sleep(250);
        const now = emu.calls.runJob - emu.executions.length;
        for (let i = last; i < now; i++) refusedTimes.push(Date.now() - started - dropAfterMs);
        last = now;
      }
    },
  });
  const lastRefusalAfterDropS = refusedTimes.length ? round(Math.max(...refusedTimes) / 1000) : 0;
  const refusedAfterFirstMinute = refusedTimes.filter((t) => t > 60_000).length;
  await ours.emu.stop();
  const figures = {
    tasks, before, after, dropAfterSeconds: dropAfterMs / 1000,
    ours: { refused: ours.refused, refusedAfterFirstMinute, lastRefusalAfterDropS, failed: ours.failed, seconds: round(ours.tookMs / 1000), ended: ours.ended, duplicates: ours.duplicates },
  };
  const met = ours.ended && ours.failed === 0 && refusedAfterFirstMinute <= Math.ceil(0.01 * after);
  return {
    figures,
    row: {
      scenario: `18. the run quota drops from ${before} to ${after}/min a minute into a ${tasks.toLocaleString('en')}-task run`,
      ours: `${ours.refused} run calls refused in all, ${refusedAfterFirstMinute} of them more than a minute after the drop; ${ours.failed} failed, ${ours.duplicates} duplicates, done in ${figures.ours.seconds} s`,
      note: 'issue 18',
      baseline: 'none: the row shows what follows the drop',
      target: `followed within a minute (≤ 1% of the new quota refused after it), none failed: ${met ? 'met' : 'NOT met'}`,
    },
  };
}
