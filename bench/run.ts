/**
 * `npm run bench`: starts its own Postgres and Cloud Run emulator, measures the tick cycle beside a
 * baseline in the same run, prints a markdown table and writes bench/results.json.
 * Figures are medians over repeated tries; the machine is shared, so compare ratios, not absolutes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { parseConfig, type Config } from '../shared/config';
import { createExecutors } from '../shared/executors';
import { startEmbeddedPostgres } from '../shared/localDb';
import { setLogSink } from '../shared/log';
import { migrate } from '../shared/migrate';
import { triggerRun } from '../shared/runs';
import { tick } from '../shared/tick';
import { applyWorkflows } from '../shared/workflows/apply';
import { parseWorkflow } from '../shared/workflows/parse';
import { startCloudRunEmulator, type CloudRunEmulator } from '../test/helpers/cloudRunEmulator';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Row {
  scenario: string;
  ours: string;
  baseline: string;
  note: string;
}

/** A run of `count` Cloud Run tasks that stay running, so the cycle dispatches and then checks each once. */
async function seedRun(pool: Pool, count: number): Promise<void> {
  await pool.query('truncate runs, tasks cascade');
  const yaml = `name: bench\ntasks:\n  t: { job: projects/p/locations/l/jobs/t, count: ${count}, env: { EMU_DURATION_MS: "600000" } }\n`;
  await applyWorkflows(pool, [parseWorkflow(yaml, '/bench/bench.yaml')]);
  await triggerRun(pool, 'bench');
}

/** One tick over a fresh run of `count` tasks with `config`; returns the tick summary. */
async function cycleOnce(pool: Pool, config: Config, count: number) {
  await seedRun(pool, count);
  return tick({ config, pool, executors: createExecutors(config) }, { budgetMs: 0 });
}

async function main(): Promise<void> {
  setLogSink(null);
  const quick = process.argv.includes('--quick');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-bench-'));
  const db = await startEmbeddedPostgres(path.join(dir, 'data'), { durable: false });
  const pool = new Pool({ connectionString: db.url, max: 20 });
  pool.on('error', () => {});
  const emu: CloudRunEmulator = await startCloudRunEmulator();
  const rows: Row[] = [];
  const results: Record<string, unknown> = {};
  try {
    await migrate(pool);
    const env = { DATABASE_URL: db.url, CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_HOME: dir };
    const config = parseConfig(env);

    // 4. One full cycle for 100 tasks at 100 ms API latency: claim, dispatch (10 in flight), check (50 in flight).
    emu.latencyMs = 100;
    const tries = quick ? 3 : 7;
    const cycles = [];
    for (let i = 0; i < tries; i++) cycles.push(await cycleOnce(pool, config, 100));
    const sequential = await cycleOnce(pool, { ...config, dispatchConcurrency: 1, statusConcurrency: 1 }, 100);
    const wall = median(cycles.map((c) => c.durationMs));
    results.fullCycle100 = { medianMs: wall, tries: cycles.map((c) => c.durationMs), sequentialMs: sequential.durationMs, summary: cycles[0] };
    rows.push({
      scenario: 'full cycle, 100 tasks, 100 ms API latency (default profile)',
      ours: `${wall} ms median of ${tries} (limit ${Math.ceil(100 / 10) * 100 + Math.ceil(100 / 50) * 100} ms)`,
      baseline: `sequential ${sequential.durationMs} ms (${(sequential.durationMs / wall).toFixed(1)}× slower); design note ~4000 ms`,
      note: `${cycles[0].dispatched} dispatched, ${cycles[0].checked} checked`,
    });

    // 6. Database round trips per cycle at batch 10, 100 and 1000 (zero latency): the same at every size.
    emu.latencyMs = 0;
    const trips: Record<number, number> = {};
    for (const batch of [10, 100, 1000]) {
      trips[batch] = (await cycleOnce(pool, { ...config, batchSize: batch, dispatchConcurrency: 50, statusConcurrency: 100 }, batch)).roundTrips;
    }
    results.roundTrips = trips;
    rows.push({
      scenario: 'database round trips per cycle, batch 10 / 100 / 1000',
      ours: `${trips[10]} / ${trips[100]} / ${trips[1000]}`,
      baseline: `N+1 would be ~${10 * 3} / ${100 * 3} / ${1000 * 3}`,
      note: 'counted at the pg client',
    });
  } finally {
    await pool.end();
    await emu.stop();
    await db.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const table = ['| scenario | ours | baseline | note |', '|---|---|---|---|', ...rows.map((r) => `| ${r.scenario} | ${r.ours} | ${r.baseline} | ${r.note} |`)].join('\n');
  console.log(table);
  fs.writeFileSync(path.join(__dirname, '..', 'bench', 'results.json'), JSON.stringify({ at: new Date().toISOString(), node: process.version, cpus: os.cpus().length, results }, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
