/** What every bench scenario shares: the running Postgres and emulator, figures, and seeding. */
import { spawn } from 'node:child_process';
import type { Pool } from 'pg';
import type { Config } from '../shared/config';
import type { TickContext } from '../shared/context';
import { countingDb } from '../shared/db';
import type { Executor } from '../shared/executors/executor';
import { triggerRun } from '../shared/operator/trigger';
import { expandPendingRuns } from '../shared/steps/expand';
import type { ExecutorKind } from '../shared/workflows/definition';
import { applyWorkflows } from '../shared/workflows/apply';
import { parseWorkflow } from '../shared/workflows/parse';
import type { BenchEmulator } from './emulatorThread';

/** The environment of one bench run, passed to every scenario. */
export interface Bench {
  pool: Pool;
  emu: BenchEmulator;
  /** DATABASE_URL, CLOUD_RUN_EMULATOR_HOST, TICKRUN_HOME: what a tick process needs. */
  env: Record<string, string>;
  /** The default profile against this database and emulator. */
  config: Config;
  /** One set of executors for the whole run, as a warm function instance keeps them. */
  executors: Record<ExecutorKind, Executor>;
  quick: boolean;
}

/** One line of the table. */
export interface Row {
  scenario: string;
  ours: string;
  note: string;
  baseline: string;
  target: string;
}

/** A scenario's table row and the figures behind it (for results.json). */
export interface Measured {
  row: Row;
  figures: Record<string, unknown>;
}

/** The q-quantile (0..1) of a sample, nearest rank. */
export function quantile(xs: number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export const median = (xs: number[]) => quantile(xs, 0.5);
export const round = (x: number, digits = 1) => Number(x.toFixed(digits));
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A step context over the bench pool with `config`, counting round trips as a tick does. */
export function contextFor(bench: Bench, config: Config = bench.config): TickContext {
  return { config, db: countingDb(bench.pool), executors: bench.executors, clock: () => new Date() };
}

/**
 * Empties the queue: no runs, no tasks, and no regions (their slots would still name the tasks truncated
 * here, holding the cap; the next expand makes them again).
 */
export async function clearRuns(pool: Pool): Promise<void> {
  await pool.query('truncate runs, tasks, task_attempts, regions, region_usage cascade');
}

/**
 * A run of `count` Cloud Run tasks of one job, each running `durationMs` in the emulator, expanded so its
 * tasks are queued (unless `expand` is false: then the run is pending). `clear` empties the queue first.
 */
export async function seedRun(bench: Bench, count: number, opts: { durationMs?: number; clear?: boolean; expand?: boolean } = {}): Promise<string> {
  if (opts.clear ?? true) await clearRuns(bench.pool);
  const yaml = `name: bench\ntasks:\n  t: { job: projects/p/locations/l/jobs/t, count: ${count}, env: { EMU_DURATION_MS: "${opts.durationMs ?? 600_000}" } }\n`;
  await applyWorkflows(bench.pool, [parseWorkflow(yaml, '/bench/bench.yaml')]);
  const { runId } = await triggerRun(bench.pool, 'bench');
  if (opts.expand ?? true) await expandPendingRuns(contextFor(bench, { ...bench.config, batchSize: 1000 }));
  return runId;
}

/** What a child process left: exit code, stdout, stderr, and how long it ran. */
export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
}

/** Runs a command to its end in the repo root with the bench env added. */
export function runChild(command: string, args: string[], env: Record<string, string>): Promise<ChildResult> {
  const started = performance.now();
  const child = spawn(command, args, { cwd: process.cwd(), env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, wallMs: performance.now() - started }));
  });
}

/** The JSON summary `tickrun tick --json` printed; throws with its stderr when it failed. */
export function tickSummary(result: ChildResult): Record<string, number> {
  if (result.code !== 0) throw new Error(`tickrun tick exited ${result.code}: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(result.stdout);
}
