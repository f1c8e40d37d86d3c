/**
 * `npm run bench [-- --quick]`: starts its own Postgres and Cloud Run emulator, runs every scenario
 * (one file each under bench/) beside its baseline measured in the same run, prints a markdown table
 * and writes bench/results.json. The machine is shared: compare ratios within a run, not absolutes
 * across runs. docs/performance.md says how each row is measured.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { parseConfig } from '../shared/config';
import { createExecutors } from '../shared/executors';
import { startEmbeddedPostgres } from '../shared/localDb';
import { setLogSink } from '../shared/log';
import { migrate } from '../shared/migrate';
import { startEmulatorThread } from './emulatorThread';
import { measureDispatch, measureStatus, measureStatusCalls } from './api';
import type { Bench, Measured, Row } from './common';
import { measureFullCycle, measureRoundTrips } from './cycle';
import { measureFanIn } from './fanIn';
import { measureFetch } from './fetch';
import { measureLifecycle } from './lifecycle';
import { measureBundle, measurePeakRss } from './process';
import { measureThroughput } from './throughput';

/** The scenarios in table order, by the key their figures have in results.json. */
const SCENARIOS: [string, (bench: Bench) => Promise<Measured>][] = [
  ['fetch', measureFetch],
  ['dispatch', measureDispatch],
  ['status', measureStatus],
  ['fullCycle', measureFullCycle],
  ['highThroughput', measureThroughput],
  ['roundTrips', measureRoundTrips],
  ['peakRss', measurePeakRss],
  ['bundle', measureBundle],
  ['lifecycle', measureLifecycle],
  ['statusCalls', measureStatusCalls],
  ['dashboard', async (bench) => (await import('./dashboard')).measureDashboard(bench)],
  ['fanIn', measureFanIn],
  ['recovery', async (bench) => (await import('./recovery')).measureRecovery(bench)],
  ['layers', async (bench) => (await import('./layers')).measureLayers(bench)],
  ['runBudget', async (bench) => (await import('./regions')).measureRunBudget(bench)],
  ['runningCap', async (bench) => (await import('./regions')).measureRunningCap(bench)],
  ['fairShare', async (bench) => (await import('./regions')).measureFairShare(bench)],
  ['quotaDrop', async (bench) => (await import('./regions')).measureQuotaDrop(bench)],
  ['arrays', async (bench) => (await import('./arrays')).measureArrays(bench)],
];

function table(rows: Row[]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  return [
    '| scenario | ours | design note | baseline, same run | target |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${[r.scenario, r.ours, r.note, r.baseline, r.target].map(cell).join(' | ')} |`),
  ].join('\n');
}

async function main(): Promise<void> {
  setLogSink(null);
  const quick = process.argv.includes('--quick');
  // `--only=regions` stands for the four rows of Cloud Run's limits (bench/regions.ts).
  const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',')
    .flatMap((key) => (key === 'regions' ? ['runBudget', 'runningCap', 'fairShare', 'quotaDrop'] : [key]));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-bench-'));
  const db = await startEmbeddedPostgres(path.join(dir, 'data'), { durable: false });
  const pool = new Pool({ connectionString: db.url, max: 20 });
  pool.on('error', () => {});
  // On a thread of its own, as Cloud Run answers from elsewhere (bench/emulatorThread.ts).
  const emu = await startEmulatorThread(path.join(__dirname, 'bench-emulator.js'));
  const rows: Row[] = [];
  const results: Record<string, unknown> = {};
  let failures = 0;
  const started = performance.now();
  try {
    await migrate(pool);
    // The emulator enforces no limit here, and the rows that measure tickrun's own speed are held to none
    // of tickrun's region limits either (bench/regions.ts measures those).
    const env: Record<string, string> = {
      DATABASE_URL: db.url, CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_HOME: dir,
      TICKRUN_RUN_REQUESTS_PER_MINUTE: '1000000', TICKRUN_READ_REQUESTS_PER_MINUTE: '1000000', TICKRUN_MAX_RUNNING_EXECUTIONS: '10000',
    };
    const config = parseConfig(env);
    const bench: Bench = { pool, emu, env, config, executors: createExecutors(config), quick };
    for (const [key, measure] of SCENARIOS) {
      if (only && !only.includes(key)) continue;
      const t0 = performance.now();
      try {
        const { row, figures } = await measure(bench);
        rows.push(row);
        results[key] = figures;
      } catch (err) {
        // One scenario failing still leaves the others' figures; the run exits 1 at the end.
        failures++;
        const message = err instanceof Error ? err.message : String(err);
        rows.push({ scenario: key, ours: `FAILED: ${message}`, note: '', baseline: '', target: '' });
        results[key] = { error: message };
      }
      console.error(`bench: ${key} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    await pool.end();
    await emu.stop();
    await db.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(table(rows));
  const machine = { node: process.version, platform: `${os.platform()} ${os.release()}`, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memGb: Math.round(os.totalmem() / 2 ** 30) };
  const out = { at: new Date().toISOString(), quick, totalSeconds: Math.round((performance.now() - started) / 1000), machine, results, table: rows };
  fs.writeFileSync(path.join(process.cwd(), 'bench', 'results.json'), `${JSON.stringify(out, null, 2)}\n`);
  if (failures > 0) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
