/**
 * Rows 2, 3 and 10: the API-bound steps at a given emulator latency, through the real steps.
 * 2: dispatchTasks over 100 claimed tasks (claim outside the measure, its record statement inside);
 * 3: pollInFlight over 100 tasks in flight (its in-flight query and record statement inside);
 * 10: the API calls one pollInFlight makes for 1,000 executions of one job.
 */
import pLimit from 'p-limit';
import type { Config } from '../shared/config';
import { claimReadyTasks } from '../shared/steps/claim';
import { dispatchTasks } from '../shared/steps/dispatch';
import { pollInFlight } from '../shared/steps/poll';
import { contextFor, median, round, seedRun, type Bench, type Measured } from './common';

/** Seeds `count` queued tasks, claims them, and times their dispatch with `config`; ms. */
async function timeDispatch(bench: Bench, config: Config, count: number): Promise<{ ms: number; dispatched: number }> {
  await seedRun(bench, count);
  const ctx = contextFor(bench, config);
  const claimed = await claimReadyTasks(ctx);
  const t0 = performance.now();
  const recorded = await dispatchTasks(ctx, claimed);
  return { ms: performance.now() - t0, dispatched: recorded.filter((r) => r.outcome === 'dispatched').length };
}

/** Puts `count` tasks in flight (dispatched at zero latency) and leaves them running. */
export async function seedInFlight(bench: Bench, count: number, opts: { clear?: boolean } = {}): Promise<void> {
  const latency = bench.emu.latencyMs;
  bench.emu.latencyMs = 0;
  await seedRun(bench, count, { clear: opts.clear });
  const ctx = contextFor(bench, { ...bench.config, batchSize: 1000, dispatchConcurrency: 50 });
  for (let claimed = await claimReadyTasks(ctx); claimed.length > 0; claimed = await claimReadyTasks(ctx)) {
    await dispatchTasks(ctx, claimed);
  }
  bench.emu.latencyMs = latency;
}

export async function measureDispatch(bench: Bench): Promise<Measured> {
  bench.emu.latencyMs = 100;
  const config = { ...bench.config, batchSize: 100, dispatchConcurrency: 10 };
  const tries = bench.quick ? 3 : 5;
  await timeDispatch(bench, config, 100); // warm-up: the client's first calls load its protos
  const runs = [];
  for (let i = 0; i < tries; i++) runs.push(await timeDispatch(bench, config, 100));
  const sequential = await timeDispatch(bench, { ...config, dispatchConcurrency: 1 }, 100);
  const ms = median(runs.map((r) => r.ms));
  const limitMs = Math.ceil(100 / 10) * 100;
  const figures = {
    latencyMs: 100, inFlight: 10, tries: runs.map((r) => round(r.ms, 0)), medianMs: round(ms, 0), limitMs,
    overLimit: round(ms / limitMs, 2), sequentialMs: round(sequential.ms, 0), speedup: round(sequential.ms / ms, 1),
    dispatched: runs[0].dispatched,
  };
  return {
    figures,
    row: {
      scenario: '2. dispatch 100 tasks, 100 ms API latency, 10 in flight (dispatchTasks)',
      ours: `${figures.medianMs} ms median of ${tries} = ${figures.overLimit}× its limit ${limitMs} ms`,
      note: '~2 s',
      baseline: `sequential (1 in flight) ${figures.sequentialMs} ms → ${figures.speedup}× slower`,
      target: `near ceil(100/10)×100 ms: ${figures.overLimit}×`,
    },
  };
}

export async function measureStatus(bench: Bench): Promise<Measured> {
  await seedInFlight(bench, 100);
  bench.emu.latencyMs = 150;
  const config = { ...bench.config, batchSize: 100, statusBatchSize: 100, statusConcurrency: 50 };
  const ctx = contextFor(bench, config);
  await pollInFlight(ctx); // warm-up, and moves every task from dispatched to running
  const tries = bench.quick ? 3 : 5;
  const times: number[] = [];
  let checked = 0;
  for (let i = 0; i < tries; i++) {
    const t0 = performance.now();
    checked = (await pollInFlight(ctx)).checked;
    times.push(performance.now() - t0);
  }
  const s0 = performance.now();
  await pollInFlight(contextFor(bench, { ...config, statusConcurrency: 1 }));
  const sequentialMs = performance.now() - s0;
  // The per-execution read (one getExecution each, 50 at once) over the same executions, for comparison.
  const names = (await bench.pool.query<{ execution_name: string }>(`select execution_name from tasks where status = 'running'`)).rows.map((r) => r.execution_name);
  const limit = pLimit(50);
  const g0 = performance.now();
  await Promise.all(names.map((name) => limit(() => bench.executors.cloudrun.status(name))));
  const perExecutionMs = performance.now() - g0;
  const callsBefore = { ...bench.emu.calls };
  await pollInFlight(ctx);
  const callsPerPoll = Object.entries(bench.emu.calls).reduce((n, [rpc, c]) => n + c - (callsBefore[rpc] ?? 0), 0);
  const ms = median(times);
  const limitMs = Math.ceil(100 / 50) * 150;
  const figures = {
    latencyMs: 150, inFlight: 50, tries: times.map((t) => round(t, 0)), medianMs: round(ms, 0), limitMs, checked,
    overLimit: round(ms / limitMs, 2), sequentialMs: round(sequentialMs, 0), speedup: round(sequentialMs / ms, 1),
    callsPerPoll, perExecutionGetMs: round(perExecutionMs, 0),
  };
  return {
    figures,
    row: {
      scenario: '3. status of 100 running tasks, 150 ms API latency, 50 in flight (pollInFlight)',
      ours: `${figures.medianMs} ms median of ${tries} = ${figures.overLimit}× its limit ${limitMs} ms (${checked} checked, ${callsPerPoll} API calls)`,
      note: '~1.5 s',
      baseline: `sequential (1 in flight) ${figures.sequentialMs} ms (${figures.speedup}×); one getExecution each, 50 in flight: ${figures.perExecutionGetMs} ms`,
      target: `near ceil(100/50)×150 ms: ${figures.overLimit}×`,
    },
  };
}

export async function measureStatusCalls(bench: Bench): Promise<Measured> {
  const count = 1000;
  await seedInFlight(bench, count);
  bench.emu.latencyMs = 0;
  const before = { ...bench.emu.calls };
  const poll = await pollInFlight(contextFor(bench, { ...bench.config, batchSize: count, statusBatchSize: count, statusConcurrency: 100 }));
  const byRpc = Object.fromEntries(
    Object.entries(bench.emu.calls).map(([rpc, n]) => [rpc, n - (before[rpc] ?? 0)]).filter(([, n]) => (n as number) > 0),
  ) as Record<string, number>;
  const calls = Object.values(byRpc).reduce((a, b) => a + b, 0);
  const figures = { executions: count, checked: poll.checked, calls, byRpc, ratioToOnePerExecution: round(calls / count, 3) };
  return {
    figures,
    row: {
      scenario: '10. API calls for one status check of 1,000 in-flight executions of one job (batch 1000)',
      ours: `${calls} calls (${Object.entries(byRpc).map(([k, v]) => `${k} ${v}`).join(', ')}) for ${poll.checked} checked`,
      note: '—',
      baseline: `one getExecution each: 1,000 calls → ours ${figures.ratioToOnePerExecution}× that`,
      target: 'fewer calls than executions',
    },
  };
}
