import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import type { Pool } from 'pg';
import type { Config } from './config';
import { openPool } from './db';
import { UsageError } from './errors';
import { createExecutors } from './executors';
import { localInfoFile, startEmbeddedPostgres, type LocalDatabase, type LocalDatabaseInfo } from './localDb';
import { setLogSink } from './log';
import { migrate } from './migrate';
import { getRun } from './model/runs';
import { listTasks } from './model/tasks';
import { triggerRun } from './operator/trigger';
import type { TickSummary } from './cycle';
import { tick } from './tick';
import { applyWorkflows } from './workflows/apply';
import { loadWorkflowFiles } from './workflows/load';
import { elapsed } from './cli/format';
import { startDashboardServer, type DashboardServer } from './dashboard/server';
import { ENDED_RUN_STATUSES } from './lifecycle';

/** The example `npm start` runs when nothing has been triggered yet. */
export const DEMO_WORKFLOW = 'local-etl';

const ENDED = new Set<string>(ENDED_RUN_STATUSES);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Writes where the local database (and, once served, the dashboard) is, for the other commands. */
function recordLocalDatabase(home: string, { stop, url, ...db }: LocalDatabase, dashboard?: string): void {
  const info: LocalDatabaseInfo = { ...db, ...(dashboard && { dashboard }) };
  fs.writeFileSync(localInfoFile(home), JSON.stringify(info));
}

/** Starts (or reuses) the local database and records where it is for the other commands. */
async function startLocalDatabase(config: Config, out: (line: string) => void): Promise<LocalDatabase | undefined> {
  if (config.database.kind !== 'local') return undefined;
  const infoFile = localInfoFile(config.home);
  if (fs.existsSync(infoFile)) {
    const { pid, dashboard } = JSON.parse(fs.readFileSync(infoFile, 'utf8')) as LocalDatabaseInfo;
    if (pid !== process.pid && alive(pid)) {
      throw new UsageError(
        `tickrun dev already runs here (pid ${pid}${dashboard ? `, dashboard ${dashboard}` : ''}): the other tickrun commands in this folder use it; Ctrl-C in its terminal (or kill ${pid}) stops it`,
      );
    }
  }
  const db = await startEmbeddedPostgres(path.join(config.home, 'pg'), { durable: true });
  recordLocalDatabase(config.home, db);
  out(`database: ${db.url} (data in ${path.join(config.home, 'pg')})`);
  return db;
}

/** Serves the dashboard on this machine; a port taken by another program is a usage error, not a crash. */
async function startDashboard(deps: Parameters<typeof startDashboardServer>[0], port: number): Promise<DashboardServer> {
  try {
    return await startDashboardServer(deps, { port });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new UsageError(`the dashboard's port ${port} is in use: pick another with --port or TICKRUN_DASHBOARD_PORT (0 takes any free one)`);
    }
    throw err;
  }
}

/** Prints each task's status change of one run; returns the run's status. */
async function reportProgress(pool: Pool, runId: string, seen: Map<string, string>, out: (line: string) => void): Promise<string> {
  for (const t of await listTasks(pool, runId)) {
    const line = `${t.status}${t.attempt > 1 ? ` (attempt ${t.attempt})` : ''}${t.error && t.status !== 'success' ? `: ${t.error}` : ''}`;
    if (seen.get(t.id) !== line) out(`  ${`${t.name}[${t.index}]`.padEnd(16)} ${line}`);
    seen.set(t.id, line);
  }
  return (await getRun(pool, runId)).status;
}

/** How soon `tickrun dev` ticks again while work moves (see devInterval). */
export const DEV_MOVING_INTERVAL_MS = 500;

/**
 * The time to the next tick of `tickrun dev`: the profile's interval when the last tick found nothing
 * under way, at most DEV_MOVING_INTERVAL_MS while a task is in flight or was just sent. A local task
 * often ends in well under a second, and a tick cannot know when, so waiting a 5 s interval for each
 * layer of a DAG makes the example's run about ten times longer than its tasks. A cycle here costs a
 * few statements on the embedded Postgres and no API quota; an idle dev keeps the profile's pace.
 */
export function devInterval(config: Config, last: TickSummary): number {
  const moving = last.runsStarted + last.claimed + last.dispatched + last.checked + last.released + last.requeued + last.retried > 0;
  return moving ? Math.min(config.pollIntervalMs, DEV_MOVING_INTERVAL_MS) : config.pollIntervalMs;
}

/**
 * `tickrun dev`: the local all-in-one. Starts the embedded Postgres (data under `.tickrun/`), migrates,
 * applies `examples/`, triggers the process example once when nothing was ever triggered and prints its
 * progress, serves the dashboard on 127.0.0.1:`dashboardPort` (its URL printed), then ticks every poll
 * interval (sooner while work moves: devInterval) until SIGINT or SIGTERM, and stops cleanly.
 */
export async function runDev(
  config: Config,
  opts: { examples: string; dashboardPort: number; out: (line: string) => void; signal: AbortSignal },
): Promise<void> {
  const { out, signal } = opts;
  fs.mkdirSync(config.home, { recursive: true });
  const localDb = await startLocalDatabase(config, out);
  const pool = await openPool(config);
  let dashboard: DashboardServer | undefined;
  try {
    const applied = await migrate(pool);
    if (applied.length) out(`migrated: ${applied.join(', ')}`);
    if (fs.existsSync(opts.examples)) {
      const loaded = await loadWorkflowFiles([opts.examples]);
      const result = await applyWorkflows(pool, loaded.map((w) => w.definition));
      out(`workflows: ${result.map((w) => `${w.name} (${w.action})`).join(', ')}`);
    }
    const deps = { config, pool, executors: createExecutors(config) };
    dashboard = await startDashboard(deps, opts.dashboardPort);
    out(`dashboard: ${dashboard.url}`);
    // For the next dev started here, which names this one instead of starting a second Postgres.
    if (localDb) recordLocalDatabase(config.home, localDb, dashboard.url);
    let watched: string | undefined;
    const { rows } = await pool.query('select exists (select 1 from runs) as any');
    if (!rows[0].any) {
      watched = (await triggerRun(pool, DEMO_WORKFLOW, { params: { source: 'npm start' } })).runId;
      out(`triggered ${DEMO_WORKFLOW}: run ${watched}`);
    }
    // Warnings stay visible as plain lines; the JSON form is for Cloud Logging.
    setLogSink((line) => {
      const { severity, message } = JSON.parse(line);
      if (severity !== 'INFO' && severity !== 'DEBUG') out(`${severity.toLowerCase()}: ${message}`);
    });
    out(`ticking every ${config.pollIntervalMs / 1000}s (${Math.min(config.pollIntervalMs, DEV_MOVING_INTERVAL_MS) / 1000}s while tasks run); Ctrl-C stops`);
    const seen = new Map<string, string>();
    while (!signal.aborted) {
      const started = Date.now();
      const summary = await tick(deps, { budgetMs: 0 });
      if (watched) {
        const status = await reportProgress(pool, watched, seen, out);
        if (ENDED.has(status)) {
          const run = await getRun(pool, watched);
          out(`run ${watched} ${status} in ${elapsed(run.startedAt ?? run.createdAt, run.finishedAt)}${run.error ? `: ${run.error}` : ''}`);
          watched = undefined;
        }
      }
      await sleep(Math.max(0, started + devInterval(config, summary) - Date.now()), undefined, { signal }).catch(() => {});
    }
  } finally {
    await dashboard?.close();
    await pool.end();
    if (localDb) {
      await localDb.stop();
      fs.rmSync(localInfoFile(config.home), { force: true });
    }
    out('stopped');
  }
}
