import fs from 'node:fs';
import path from 'node:path';
import type { TickSummary } from '../../shared/cycle';
import { IN_FLIGHT_STATUSES } from '../../shared/lifecycle';
import { cancelAction, retryAction, triggerAction, type ActionDeps } from '../../shared/dashboard/actions';
import { getRunDetail } from '../../shared/dashboard/runDetail';
import { listRunSummaries, parseRunFilter } from '../../shared/dashboard/runList';
import { getRun, listRuns } from '../../shared/model/runs';
import { listTasks } from '../../shared/model/tasks';
import { listWorkflows } from '../../shared/model/workflows';
import { setSchedulePaused } from '../../shared/operator/pause';
import { triggerRun } from '../../shared/operator/trigger';
import { tick } from '../../shared/tick';
import { applyWorkflows } from '../../shared/workflows/apply';
import { parseWorkflow } from '../../shared/workflows/parse';
import type { CloudRunEmulator } from '../helpers/cloudRunEmulator';
import type { Harness } from '../helpers/harness';

const JOB = 'projects/demo/locations/us-central1/jobs/orders';
const EXAMPLES = path.resolve(__dirname, '..', '..', 'examples');

// A limited workflow (its claims take concurrency slots) whose run meets each way an attempt ends: `load`
// fails once and is retried, `check` runs past its timeout and is stopped, so `publish` is skipped.
const ORDERS = `name: orders
concurrency: 2
defaults: { retries: 1, backoff: 0s }
tasks:
  extract: { job: ${JOB}, count: 3 }
  load: { job: ${JOB}, depends_on: [extract], env: { EMU_FAIL: "attempts<2" } }
  check: { job: ${JOB}, depends_on: [extract], retries: 0, timeout: 1s, env: { EMU_DURATION_MS: "600000" } }
  publish: { job: ${JOB}, depends_on: [load, check] }
`;
const NIGHTLY = `name: nightly\nschedule: "* * * * *"\ntasks:\n  a: { job: ${JOB} }\n`;
const SINGLE = `name: single\ntasks:\n  t: { job: ${JOB} }\n`;

/** The harness settings the workload needs: the emulator, and a dispatch deadline short enough to wait out. */
export const workloadEnv = (emu: CloudRunEmulator): Record<string, string> => ({
  CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_API_TIMEOUT: '', TICKRUN_DISPATCH_TIMEOUT: '1s', TICKRUN_POLL_INTERVAL: '300ms',
});

/**
 * What a release does to its database in a day, in a few seconds: the local example DAG through the process
 * executor; Cloud Run runs through the emulator with a fan-out, a join, a retry, a timeout, a skip, a
 * concurrency limit, a schedule slot, a retried run, a cancelled one and a lost dispatch adopted; the
 * dashboard's reads and actions and the operator commands between ticks. Returns the ticks' summed counts.
 */
export async function runWorkload(h: Harness, emu: CloudRunEmulator): Promise<TickSummary> {
  const { pool } = h.db;
  const deps: ActionDeps = { pool, config: h.config, executors: h.deps.executors };
  const total: Partial<Record<keyof TickSummary, number>> = {};
  const tickOnce = async (budgetMs = 0) => {
    for (const [k, v] of Object.entries(await tick(h.deps, { budgetMs }))) total[k as keyof TickSummary] = (total[k as keyof TickSummary] ?? 0) + v;
  };
  const dashboardReads = async (runId: string) => {
    await listWorkflows(pool);
    await listRunSummaries(pool, parseRunFilter(new URLSearchParams()));
    await getRunDetail(pool, runId);
    // `tickrun status RUN`'s reads.
    await getRun(pool, runId);
    await listTasks(pool, runId);
  };
  const tickUntilEnded = async (runIds: string[]) => {
    for (let i = 0; i < 300; i++) {
      await tickOnce();
      if (i % 5 === 0) await dashboardReads(runIds[0]);
      // A run ends before its stopped executions do: it is settled when none of its tasks is in flight.
      const runs = await listRuns(pool);
      if (runIds.every((id) => runs.some((r) => r.id === id && r.status !== 'pending' && r.status !== 'running' && !IN_FLIGHT_STATUSES.some((s) => r.tasks[s])))) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`runs ${runIds.join(', ')} did not end within 300 ticks`);
  };

  // A schedule slot a minute old is due at the first tick; the schedule is then paused.
  const local = path.join(EXAMPLES, 'local-etl.yaml');
  await applyWorkflows(pool, [
    parseWorkflow(fs.readFileSync(local, 'utf8'), local),
    ...[ORDERS, NIGHTLY, SINGLE].map((yaml) => parseWorkflow(yaml, path.join(h.home, 'workflow.yaml'))),
  ], new Date(Date.now() - 61_000));
  const etl = (await triggerRun(pool, 'local-etl', { params: { rows: '4' } })).runId;
  const orders = (await triggerAction(deps, { workflow: 'orders', idempotencyKey: 'day-1' })).body.runId;
  await triggerAction(deps, { workflow: 'orders', idempotencyKey: 'day-1' });
  await tickOnce();
  await setSchedulePaused(pool, 'nightly', true);
  const nightly = (await listRuns(pool, { workflow: 'nightly' }))[0].id;
  await tickUntilEnded([orders, etl, nightly]);

  // The failed run retried from the dashboard: `check` runs (and times out) again, `publish` waits again.
  await retryAction(deps, orders);
  await tickUntilEnded([orders]);

  // A run cancelled while its tasks are in flight: their executions are stopped.
  const cancelled = (await triggerRun(pool, 'orders')).runId;
  for (let i = 0; i < 20 && !(await listTasks(pool, cancelled)).some((t) => t.status === 'running'); i++) await tickOnce();
  await cancelAction(deps, cancelled);
  await tickUntilEnded([cancelled]);

  // A dispatch whose answer is lost: the execution was started, and the tick that sent it adopts it.
  emu.setFaults({ rate: 1, kinds: ['lost'], rpcs: ['runJob'] });
  const lost = (await triggerRun(pool, 'single')).runId;
  await tickOnce(5000);
  emu.setFaults(null);
  await tickUntilEnded([lost]);
  await dashboardReads(lost);
  return total as TickSummary;
}
