import type { Pool } from 'pg';
import { UsageError } from './errors';

/** A role name as SQL writes it: quoted, any quote in it doubled. */
const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Lets a database user (the tick's IAM user on Cloud SQL) read and write tickrun's tables: those there
 * now and, through default privileges, those later migrations add. It may not alter them nor touch the
 * migration history or the schema's version: the schema stays the migrating user's. All in one transaction; safe to repeat.
 */
export async function grantTableAccess(pool: Pool, user: string): Promise<void> {
  if (!user.trim()) throw new UsageError('grant needs the database user to give access to, like tickrun-tick@PROJECT.iam');
  const role = quote(user);
  const client = await pool.connect();
  try {
    await client.query('begin');
    for (const statement of [
      `grant usage on schema public to ${role}`,
      `grant select, insert, update, delete on all tables in schema public to ${role}`,
      `grant usage, select, update on all sequences in schema public to ${role}`,
      `revoke all on table tickrun_migrations from ${role}`,
      // The schema's version is the migrations' to write (migrations/README.md); a tick only reads it.
      `revoke insert, update, delete, truncate on table tickrun_schema from ${role}`,
      `alter default privileges in schema public grant select, insert, update, delete on tables to ${role}`,
      `alter default privileges in schema public grant usage, select, update on sequences to ${role}`,
    ]) {
      await client.query(statement);
    }
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => {});
    if ((err as { code?: string }).code === '42704') throw new UsageError(`no database user "${user}": create it first (terraform's google_sql_user)`);
    throw err;
  } finally {
    client.release();
  }
}
