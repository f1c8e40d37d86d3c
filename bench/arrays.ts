/**
 * Row 19: a 10,000-way fan-out whose indexes 17, 4,242 and 9,999 fail once, as an array task (issue 19)
 * and, in the same run, as `count:` alone, both under Cloud Run's limits as tickrun's defaults assume
 * them (180 run requests and 1,200 reads a minute, 1,000 running executions), enforced by the emulator.
 * One tick at a time, a cycle a second, so that each cycle's reads are counted from the emulator. The
 * baseline, which sends one execution per index at the run budget's pace, is measured over its first
 * BASELINE_MS and its end computed at that pace.
 */
import { parseConfig } from '../shared/config';
import type { TickSummary } from '../shared/cycle';
import { createExecutors } from '../shared/executors';
import { triggerRun } from '../shared/operator/trigger';
import { tick } from '../shared/tick';
import { applyWorkflows } from '../shared/workflows/apply';
import { parseWorkflow } from '../shared/workflows/parse';
import { startCloudRunEmulator } from '../test/helpers/cloudRunEmulator';
import { clearRuns, round, sleep, type Bench, type Measured } from './common';

const BASELINE_MS = 60_000;
const READS = ['getExecution', 'listExecutions', 'getJob', 'getOperation'];
const QUOTAS = { runPerMinute: 180, readPerMinute: 1200, maxRunning: 1000 };

interface Outcome {
  runJob: number;
  /** Status reads (getExecution, listExecutions, getJob, getOperation) and Tasks API pages. */
  reads: number;
  taskPages: number;
  cycles: number;
  /** Cycles that found something in flight and checked it. */
  checkingCycles: number;
  seconds: number;
  ended: boolean;
  status: string;
  attempts: { attempt: number; n: number }[];
  duplicates: number;
  refused: number;
}

async function runOne(bench: Bench, array: boolean, count: number, limitMs: number): Promise<Outcome> {
  const name = array ? 'wide-array' : 'wide-count';
  const failing = [17, 4242, count - 1].join(',');
  const yaml = `name: ${name}
tasks:
  fan:
    job: projects/p/locations/l/jobs/${name}
    ${array ? 'array: true\n    ' : ''}count: ${count}
    retries: 1
    backoff: 1s
    env: { EMU_FAIL_INDEXES: "${failing}", EMU_FAIL: "attempts<2", EMU_DURATION_MS: "5000" }
`;
  await clearRuns(bench.pool);
  await applyWorkflows(bench.pool, [parseWorkflow(yaml, `/bench/${name}.yaml`)]);
  const emu = await startCloudRunEmulator();
  emu.setQuotas(QUOTAS);
  const config = parseConfig({ DATABASE_URL: bench.env.DATABASE_URL, TICKRUN_HOME: bench.env.TICKRUN_HOME, CLOUD_RUN_EMULATOR_HOST: emu.host });
  const deps = { config, pool: bench.pool, executors: createExecutors(config) };
  const { runId } = await triggerRun(bench.pool, name);
  const started = Date.now();
  const ticks: TickSummary[] = [];
  let status = 'running';
  try {
    while (['pending', 'running'].includes(status) && Date.now() - started < limitMs) {
      ticks.push(await tick(deps, { budgetMs: 0 }));
      status = (await bench.pool.query('select status from runs where id = $1', [runId])).rows[0].status;
      if (['pending', 'running'].includes(status)) await sleep(1000);
    }
  } finally {
    await emu.stop();
  }
  const { rows: attempts } = await bench.pool.query<{ attempt: number; n: number }>(
    'select attempt, count(*)::int as n from tasks where run_id = $1 group by 1 order by 1', [runId]);
  return {
    runJob: emu.calls.runJob,
    reads: READS.reduce((n, rpc) => n + (emu.calls[rpc] ?? 0), 0),
    taskPages: emu.calls.listTasks ?? 0,
    cycles: ticks.reduce((n, t) => n + t.cycles, 0),
    checkingCycles: ticks.filter((t) => t.checked > 0).length,
    seconds: round((Date.now() - started) / 1000),
    ended: !['pending', 'running'].includes(status),
    status,
    attempts,
    duplicates: [...emu.startsByIndex().values()].filter((n) => n > 1).length,
    refused: emu.throttled.run + emu.throttled.read + emu.throttled.running,
  };
}

/** Row 19. */
export async function measureArrays(bench: Bench): Promise<Measured> {
  const count = 10_000;
  const ours = await runOne(bench, true, count, 10 * 60_000);
  const base = await runOne(bench, false, count, BASELINE_MS);
  // The baseline's pace: the executions its run budget let it send a minute, which the whole fan-out
  // and its three retries would take at that pace.
  const basePerMinute = base.runJob / (base.seconds / 60);
  const baseMinutes = round((count + 3) / basePerMinute, 1);
  const readsPerCheck = round(ours.reads / Math.max(1, ours.checkingCycles), 2);
  const right = ours.status === 'success' && ours.attempts.length === 2 && ours.attempts[1].attempt === 2 && ours.attempts[1].n === 3;
  const met = right && ours.runJob === 2 && readsPerCheck <= 1 && ours.taskPages === Math.ceil(count / 1000) && ours.duplicates === 0;
  const figures = {
    count, failing: [17, 4242, count - 1], quotas: QUOTAS,
    ours: { ...ours, readsPerCheckingCycle: readsPerCheck },
    baseline: { ...base, perMinute: round(basePerMinute), projectedMinutes: baseMinutes, readsPerCheckingCycle: round(base.reads / Math.max(1, base.checkingCycles), 2) },
  };
  return {
    figures,
    row: {
      scenario: `19. a ${count.toLocaleString('en')}-index array task, indexes 17, 4,242 and ${(count - 1).toLocaleString('en')} failing once (Cloud Run's default quotas)`,
      ours: `${ours.status} in ${ours.seconds} s: ${ours.runJob} runJob calls, ${ours.reads} status reads in ${ours.checkingCycles} checking cycles (${readsPerCheck} per cycle), ${ours.taskPages} Tasks API pages; attempts ${ours.attempts.map((a) => `${a.n}×${a.attempt}`).join(', ')}; ${ours.duplicates} duplicates, ${ours.refused} refused`,
      note: 'issue 19',
      baseline: `count: alone, its first ${BASELINE_MS / 1000} s: ${base.runJob} runJob calls (${round(basePerMinute)}/min), ${base.reads} status reads in ${base.checkingCycles} checking cycles; all ${(count + 3).toLocaleString('en')} sent in ~${baseMinutes} min at that pace`,
      target: `2 runJob calls, ≤ 1 status read per execution per cycle, ${Math.ceil(count / 1000)} Tasks API pages, right attempts: ${met ? 'met' : 'NOT met'}`,
    },
  };
}
