import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';
import { runner } from 'node-pg-migrate';

/** migrations/ sits at the package root, above both shared/ (sources) and dist/ (bundles). */
export const MIGRATIONS_DIR = path.resolve(__dirname, '..', 'migrations');

/**
 * node-pg-migrate runs every file of its folder but those matching `ignorePattern`
 * (https://salsita.github.io/node-pg-migrate/api); only the .sql ones are migrations (README.md states
 * their rule, compat/ holds each release's statements).
 */
const NOT_A_MIGRATION = '(?!.*\\.sql$).*';

/** The migrations' names ("0007_stopping"), in the order they run. */
export function migrationNames(): string[] {
  return fs.readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort().map((f) => f.slice(0, -'.sql'.length));
}

/** Any constant both machines agree on; it keys the advisory lock that serialises migrators. */
const MIGRATION_LOCK = 7_146_001;

/**
 * Applies pending migrations from migrations/ in order, each in its own transaction, recorded in
 * `tickrun_migrations`. Safe to run twice and from two machines at once: the second waits on a
 * session advisory lock (node-pg-migrate's own lock fails instead of waiting) and then finds
 * nothing to do. `count` stops after that many (tests build a schema as an older release left it).
 * Returns the names of the migrations applied.
 */
export async function migrate(pool: Pool, { count = Infinity }: { count?: number } = {}): Promise<string[]> {
  const client = await pool.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      const applied = await runner({
        dbClient: client,
        dir: MIGRATIONS_DIR,
        direction: 'up',
        migrationsTable: 'tickrun_migrations',
        count,
        ignorePattern: NOT_A_MIGRATION,
        noLock: true,
        checkOrder: true,
        log: () => {},
      });
      return applied.map((m) => m.name);
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } finally {
    client.release();
  }
}
