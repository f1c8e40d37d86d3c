/**
 * Row 5: the high_throughput profile (claim batch 500, status batch 10,000, 50 dispatches / 100 status
 * checks in flight) at 20 ms API latency: dispatches and status checks per second through the real
 * steps, beside the bare @google-cloud/run client at the same concurrency (the ceiling), and tick
 * processes side by side. Both sides are warmed by the same number of calls first, as a function
 * instance is after its first tick.
 */
import { ExecutionsClient, JobsClient } from '@google-cloud/run';
import { PassThroughClient } from 'google-auth-library';
import pLimit from 'p-limit';
import { parseConfig } from '../shared/config';
import type { TickContext } from '../shared/context';
import { claimReadyTasks } from '../shared/steps/claim';
import { dispatchTasks } from '../shared/steps/dispatch';
import { pollInFlight } from '../shared/steps/poll';
import { contextFor, round, runChild, seedRun, tickSummary, type Bench, type Measured } from './common';

const LATENCY_MS = 20;
/** Calls (or tasks) each side makes before it is timed: protos loaded, code optimised, connections open. */
const WARM_UP = 1000;
type ClientOptions = NonNullable<ConstructorParameters<typeof JobsClient>[0]>;

/** The bare client's calls per second: `calls` calls of `call`, `inFlight` at once. */
async function callsPerSecond(calls: number, inFlight: number, call: (i: number) => Promise<unknown>): Promise<number> {
  const limit = pLimit(inFlight);
  await Promise.all(Array.from({ length: WARM_UP }, (_, i) => limit(() => call(i))));
  const t0 = performance.now();
  await Promise.all(Array.from({ length: calls }, (_, i) => limit(() => call(i))));
  return calls / ((performance.now() - t0) / 1000);
}

/** The client ceiling: runJob at 50 in flight and getExecution at 100 in flight, as the executor builds its clients. */
async function clientCeiling(bench: Bench, calls: number): Promise<{ runJobPerS: number; getExecutionPerS: number }> {
  const url = new URL(`http://${bench.emu.host}`);
  const options: ClientOptions = {
    fallback: true, protocol: 'http', apiEndpoint: url.hostname, port: Number(url.port),
    authClient: new PassThroughClient({ transporterOptions: { fetchImplementation: fetch } }) as unknown as ClientOptions['authClient'],
  };
  const jobs = new JobsClient(options);
  const executions = new ExecutionsClient(options);
  const name = 'projects/p/locations/l/jobs/ceiling';
  const overrides = { containerOverrides: [{ env: [{ name: 'EMU_DURATION_MS', value: '600000' }] }] };
  const runJobPerS = await callsPerSecond(calls, 50, () => jobs.runJob({ name, overrides }, { timeout: 30_000 }));
  const names = (await bench.emu.executionNames()).slice(-calls);
  const getExecutionPerS = await callsPerSecond(calls * 2, 100, (i) => executions.getExecution({ name: names[i % names.length] }, { timeout: 30_000 }));
  await Promise.all([jobs.close(), executions.close()]);
  return { runJobPerS: round(runJobPerS, 0), getExecutionPerS: round(getExecutionPerS, 0) };
}

/** Dispatches per second and status checks per second over `count` tasks with the high_throughput profile, in process. */
async function stepRates(bench: Bench, count: number): Promise<{ dispatchPerS: number; statusPerS: number; dispatched: number; checked: number; statusCalls: Record<string, number> }> {
  const config = parseConfig({ ...bench.env, TICKRUN_PROFILE: 'high_throughput' });
  const ctx = contextFor(bench, config);
  await seedRun(bench, WARM_UP);
  await dispatchThenCheck(ctx, bench, WARM_UP);
  await seedRun(bench, count);
  return dispatchThenCheck(ctx, bench, count);
}

/** Claims and dispatches every queued task, then checks them all in flight; the rates of each. */
async function dispatchThenCheck(ctx: TickContext, bench: Bench, count: number) {
  let dispatched = 0;
  const d0 = performance.now();
  for (let claimed = await claimReadyTasks(ctx); claimed.length > 0; claimed = await claimReadyTasks(ctx)) {
    dispatched += (await dispatchTasks(ctx, claimed)).filter((r) => r.outcome === 'dispatched').length;
  }
  const dispatchS = (performance.now() - d0) / 1000;
  let checked = 0;
  const callsBefore = { ...bench.emu.calls };
  const s0 = performance.now();
  while (checked < count) checked += (await pollInFlight(ctx)).checked;
  const statusS = (performance.now() - s0) / 1000;
  const statusCalls = Object.fromEntries(Object.entries(bench.emu.calls).map(([rpc, n]) => [rpc, n - (callsBefore[rpc] ?? 0)]).filter(([, n]) => Number(n) > 0));
  return { dispatchPerS: round(dispatched / dispatchS, 0), statusPerS: round(checked / statusS, 0), dispatched, checked, statusCalls };
}

/** `processes` tick processes at once, each cycling for `budget` over 10K queued tasks: dispatches per second. */
async function processRate(bench: Bench, processes: number, budget: string): Promise<{ dispatched: number; perS: number; wallPerS: number; durationsMs: number[] }> {
  await seedRun(bench, 10_000);
  const env = { ...bench.env, TICKRUN_PROFILE: 'high_throughput', TICKRUN_POLL_INTERVAL: '100ms' };
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: processes }, () => runChild(process.execPath, ['bin/tickrun.js', 'tick', '--json', '--budget', budget], env)));
  const wallS = (performance.now() - t0) / 1000;
  const summaries = results.map(tickSummary);
  const dispatched = summaries.reduce((n, s) => n + s.dispatched, 0);
  const durationsMs = summaries.map((s) => s.durationMs);
  return { dispatched, perS: round(dispatched / (Math.max(...durationsMs) / 1000), 0), wallPerS: round(dispatched / wallS, 0), durationsMs };
}

export async function measureThroughput(bench: Bench): Promise<Measured> {
  bench.emu.latencyMs = LATENCY_MS;
  const count = bench.quick ? 5_000 : 10_000;
  const steps = await stepRates(bench, count);
  const ceiling = await clientCeiling(bench, bench.quick ? 1_000 : 2_000);
  const budget = bench.quick ? '4s' : '6s';
  const one = await processRate(bench, 1, budget);
  const two = await processRate(bench, 2, budget);
  const figures = { latencyMs: LATENCY_MS, tasks: count, steps, clientCeiling: ceiling, tickProcesses: { budget, one, two } };
  return {
    figures,
    row: {
      scenario: `5. high_throughput profile (claim batch 500, status batch 10,000, 50 / 100 in flight), ${count.toLocaleString('en')} tasks, 20 ms API latency`,
      ours: `${steps.dispatchPerS} dispatches/s, ${steps.statusPerS} status checks/s (in process, after ${WARM_UP} warm-up; ${Object.entries(steps.statusCalls).map(([rpc, n]) => `${n} ${rpc}`).join(', ')} for ${steps.checked} checks); tick processes (${budget} each): 1 → ${one.perS}/s, 2 side by side → ${two.perS}/s`,
      note: '~1000 dispatches/s, ~2000 status/s',
      baseline: `bare client, as shipped (${WARM_UP} warm-up calls): ${ceiling.runJobPerS} runJob/s (50 in flight), ${ceiling.getExecutionPerS} getExecution/s (100 in flight) → ours ${round(steps.dispatchPerS / ceiling.runJobPerS, 2)}× / ${round(steps.statusPerS / ceiling.getExecutionPerS, 2)}× the bare client`,
      target: `≥ 1000 dispatches/s and ≥ 2000 status checks/s: ${steps.dispatchPerS >= 1000 && steps.statusPerS >= 2000 ? 'met' : 'NOT met'}`,
    },
  };
}
