import { Pool, type PoolConfig, type QueryResult, type QueryResultRow } from 'pg';
import type { Config } from './config';
import { localPoolConfig } from './localDb';
import { log } from './log';

/** What a step needs of the database: one query at a time, counted. */
export interface Db {
  query<R extends QueryResultRow = any>(text: string, values?: unknown[], name?: string): Promise<QueryResult<R>>;
  /** Round trips made through this handle. */
  readonly roundTrips: number;
  /** The same, by the name of each named statement (`tickrun_claim`, `tickrun_renew`…). */
  readonly byName: Readonly<Record<string, number>>;
}

/**
 * Wraps a pool so a tick can report how many round trips it made. `name` makes the statement
 * a named prepared statement: parsed and planned once per connection instead of every call.
 */
export function countingDb(pool: Pool): Db {
  let roundTrips = 0;
  const byName: Record<string, number> = {};
  return {
    query(text, values, name) {
      roundTrips++;
      if (name) byName[name] = (byName[name] ?? 0) + 1;
      return pool.query(name ? { name, text, values } : { text, values });
    },
    get roundTrips() {
      return roundTrips;
    },
    byName,
  };
}

/** Pool settings for the configured database: a URL, Cloud SQL through the connector, or the local one. */
export async function poolConfig(config: Config): Promise<{ pool: PoolConfig; close?: () => void }> {
  const db = config.database;
  // application_name lets an operator (and the chaos suite) tell tick connections apart in pg_stat_activity.
  const common: PoolConfig = { max: config.poolSize, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 30_000, application_name: 'tickrun' };
  if (db.kind === 'url') return { pool: { ...common, connectionString: db.url } };
  if (db.kind === 'local') return { pool: { ...common, ...localPoolConfig(db.home) } };
  const { Connector, AuthTypes, IpAddressTypes } = await import('@google-cloud/cloud-sql-connector');
  const connector = new Connector();
  const opts = await connector.getOptions({
    instanceConnectionName: db.instanceConnectionName,
    authType: AuthTypes.IAM,
    ipType: IpAddressTypes.PUBLIC,
  });
  return { pool: { ...common, ...opts, user: db.user, database: db.database }, close: () => connector.close() };
}

/** Opens the configured pool. Closing it also closes the Cloud SQL connector, when there is one. */
export async function openPool(config: Config): Promise<Pool> {
  const { pool: settings, close } = await poolConfig(config);
  const pool = new Pool(settings);
  // An idle client losing its connection emits 'error' on the pool; unhandled, it would kill the process.
  pool.on('error', (err) => log('WARNING', `database connection lost: ${err.message}`));
  if (close) {
    const end = pool.end.bind(pool);
    pool.end = (async () => {
      await end();
      close();
    }) as Pool['end'];
  }
  return pool;
}
