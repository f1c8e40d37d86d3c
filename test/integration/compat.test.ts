import fs from 'node:fs';
import type { Pool } from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { COMPAT_DIR, migrationNumber, type StatementFixture } from '../compat/fixture';
import { replayStatements } from '../compat/replay';

/** The oldest tick the schema lets run (tickrun_schema.oldest_tick, migrations/README.md). */
const oldestTick = async (pool: Pool): Promise<number> => (await pool.query('select oldest_tick from tickrun_schema')).rows[0].oldest_tick;

const fixtures = fs.readdirSync(COMPAT_DIR).filter((f) => f.endsWith('.json')).sort();
const load = (file: string): StatementFixture => JSON.parse(fs.readFileSync(`${COMPAT_DIR}/${file}`, 'utf8'));

describe("an earlier release's statements against every migration", () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(() => db.drop());

  // Releases older than the schema's oldest tick refuse to run against it (shared/schemaVersion.ts): their
  // statements need not work any more.
  it.each(fixtures)('%s replays without an error, each statement answering as many rows', async (file) => {
    const fixture = load(file);
    expect(migrationNumber(fixture.migration)).toBe(migrationNumber(file));
    if (migrationNumber(file) < (await oldestTick(db.pool))) return;
    await replayStatements(db.pool, fixture);
  });

  // The replay sees what a migration that is not expand-only does to the tick before it.
  it.each([
    ['a NOT NULL column without a default', 'alter table tasks add column owner text not null', /^statement \d+ of \d+ \(0\d+_\w+\): with pending as .*\nfailed: null value in column "owner"/],
    ['a dropped column', 'alter table tasks drop column stop_sent_at', /^statement \d+ of \d+ .*\nfailed: column t\.stop_sent_at does not exist/],
    ['a narrower CHECK', "alter table runs add constraint runs_no_params check (params = '{}')", /^statement \d+ of \d+ .*insert into runs .*\nfailed: .*violates check constraint "runs_no_params"/],
  ])('fails on %s, naming the statement', async (_what, breaking, refused) => {
    await db.pool.query(breaking);
    await expect(replayStatements(db.pool, load(fixtures.at(-1)!))).rejects.toThrow(refused);
  });
});
