import path from 'node:path';
import { MIGRATIONS_DIR } from '../../shared/migrate';

/**
 * What one release sent to Postgres during a workload (test/compat/workload.ts), in the order the answers
 * came: replayed against a newer schema, it is that release's tick, operator commands and dashboard
 * running on it (test/integration/compat.test.ts).
 */
export interface StatementFixture {
  /** The newest migration of the release that sent these statements, e.g. "0007_stopping". */
  migration: string;
  /** When the first statement was sent (ms since the epoch): the dates the release computed itself are moved by how much later a replay runs. */
  startedAt: number;
  /** Each distinct statement text once: a tick sends the same few hundreds of times. */
  texts: string[];
  statements: RecordedStatement[];
}

/** One statement as it went and came back. Dates travel as {"$date": iso}. */
export interface RecordedStatement {
  /** Which connection sent it: a transaction's statements share one. */
  conn: number;
  /** When it was sent, ms after the first statement; the replay keeps at least these gaps (now() moves on). */
  at: number;
  /** Index into `texts`. */
  text: number;
  values: unknown[];
  /** What came back: the rows, or the error's SQLSTATE. */
  rowCount: number | null;
  rows?: unknown[];
  error?: string;
}

/** Where the statements of the release whose newest migration is `migration` ("0007_stopping") are kept. */
export const COMPAT_DIR = path.join(MIGRATIONS_DIR, 'compat');

/** The number of a migration or fixture file name: "0007_stopping.sql" → 7. */
export const migrationNumber = (name: string): number => Number(/^(\d{4})/.exec(name)?.[1] ?? NaN);

/** The fixture file of a release whose newest migration has this number: compat/0007.json. */
export const fixturePath = (n: number): string => path.join(COMPAT_DIR, `${String(n).padStart(4, '0')}.json`);

/** Dates as {"$date": iso}, everything else as JSON has it: a replay gives back Dates where Dates went. */
export function encode(value: unknown): unknown {
  if (value instanceof Date) return { $date: value.toISOString() };
  if (Array.isArray(value)) return value.map(encode);
  if (Buffer.isBuffer(value)) throw new Error('a bytea value in a recorded statement: the fixture format has no place for it');
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encode(v)]));
  return value === undefined ? null : value;
}

/** Whether a decoded leaf is a recorded Date. */
export const isDateTag = (v: unknown): v is { $date: string } =>
  !!v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && typeof (v as { $date?: unknown }).$date === 'string';
