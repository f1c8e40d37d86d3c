import fs from 'node:fs';
import path from 'node:path';
import { Pool } from 'pg';
import { migrate, migrationNames, MIGRATIONS_DIR } from '../../shared/migrate';
import { findContractions, UnknownStatementError, type Migration } from '../compat/contractions';
import { fixturePath, migrationNumber } from '../compat/fixture';
import { createTestDatabase } from '../helpers/db';

// migrations/README.md: every migration is expand-only, or marked breaking and raises the oldest tick the
// schema lets run to itself. 0001–0007 predate the rule; its table says what each was.
const RULE_FROM = 8;
/** The release the rule starts from: its tick is the oldest 0008 lets run, and its statements are recorded. */
const FIRST_RULED_TICK = 7;

const migrations: Migration[] = migrationNames().map((name) => ({ name, sql: fs.readFileSync(path.join(MIGRATIONS_DIR, `${name}.sql`), 'utf8') }));
const ruled = migrations.filter((m) => migrationNumber(m.name) >= RULE_FROM);
const markedBreaking = (m: Migration) => /^-- Breaking: \S/m.test(m.sql);

/** The README's table of the migrations before the rule: name → breaking. */
function readmeTable(): Map<string, boolean> {
  const readme = path.join(MIGRATIONS_DIR, 'README.md');
  if (!fs.existsSync(readme)) throw new Error('migrations/README.md is missing: it states the migration rule and tables 0001–0007');
  const table = new Map<string, boolean>();
  for (const line of fs.readFileSync(readme, 'utf8').split('\n')) {
    const cells = line.split('|').map((c) => c.trim().replace(/`/g, ''));
    if (/^\d{4}_\w+$/.test(cells[1] ?? '')) table.set(cells[1], /^yes\b/i.test(cells.at(-2) ?? ''));
  }
  return table;
}

describe('the migration rule', () => {
  it('knows every kind of statement every migration uses', async () => {
    await expect(findContractions(migrations)).resolves.toBeInstanceOf(Map);
  });

  it("0001–0007, which predate it, are as the README's table says: breaking exactly when they contract", async () => {
    const found = await findContractions(migrations);
    const before = migrations.filter((m) => migrationNumber(m.name) < RULE_FROM);
    expect(Object.fromEntries(readmeTable())).toEqual(Object.fromEntries(before.map((m) => [m.name, found.get(m.name)!.length > 0])));
  });

  it('from 0008 on, a migration is marked breaking exactly when it has a statement that is not expand-only', async () => {
    const found = await findContractions(migrations);
    for (const m of ruled) expect({ migration: m.name, breaking: markedBreaking(m), contractions: found.get(m.name) }).toEqual({ migration: m.name, breaking: found.get(m.name)!.length > 0, contractions: found.get(m.name) });
  });

  it('from 0008 on, each migration records its number as the schema version, and a breaking one raises the oldest tick to itself', async () => {
    expect(ruled.length).toBeGreaterThan(0);
    const admin = new Pool({ connectionString: process.env.TICKRUN_TEST_PG_URL, max: 1 });
    await admin.query('create database migration_rule');
    const pool = new Pool({ connectionString: process.env.TICKRUN_TEST_PG_URL!.replace(/\/tickrun$/, '/migration_rule'), max: 1 });
    try {
      await migrate(pool, { count: RULE_FROM - 1 });
      let oldest = FIRST_RULED_TICK;
      for (const m of ruled) {
        expect(await migrate(pool, { count: 1 })).toEqual([m.name]);
        if (markedBreaking(m)) oldest = migrationNumber(m.name);
        const { rows } = await pool.query('select version, oldest_tick from tickrun_schema');
        expect({ migration: m.name, rows }).toEqual({ migration: m.name, rows: [{ version: migrationNumber(m.name), oldest_tick: oldest }] });
      }
    } finally {
      await pool.end();
      await admin.query('drop database migration_rule with (force)');
      await admin.end();
    }
  });

  it('has the statements of every release still let run recorded before the next migration came', async () => {
    const db = await createTestDatabase();
    try {
      const { rows } = await db.pool.query('select oldest_tick from tickrun_schema');
      // A release is the one before a migration: its fixture must exist unless that migration's tick range excludes it.
      const missing = ruled.map((m) => migrationNumber(m.name) - 1).filter((n) => n >= rows[0].oldest_tick && !fs.existsSync(fixturePath(n)));
      expect(missing.map((n) => `${path.relative(process.cwd(), fixturePath(n))}: record it with \`npm run record-statements\` on the commit before migration ${n + 1}`)).toEqual([]);
    } finally {
      await db.drop();
    }
  });

  describe('finds', () => {
    // Each statement one contraction of the previous tick's schema, by its kind.
    const contractions: [string, RegExp][] = [
      ['alter table tasks drop column error', /drops tasks\.error/],
      ['alter table tasks alter column attempt type bigint', /changes the type of tasks\.attempt/],
      ['alter table tasks alter column error set not null', /sets tasks\.error NOT NULL/],
      ['alter table tasks add column owner text not null', /adds tasks\.owner NOT NULL without a default/],
      ["alter table runs add constraint runs_short_error check (length(error) < 100) not valid", /adds the constraint runs_short_error on runs \(error\)/],
      ['alter table tasks add constraint tasks_one_name unique (run_id, name)', /adds the constraint tasks_one_name on tasks \(run_id, name\)/],
      ['alter table tasks add constraint tasks_workflow_fk foreign key (workflow) references workflows (name)', /adds the constraint tasks_workflow_fk on tasks \(workflow\)/],
      ['create unique index tasks_one_execution on tasks (execution_name)', /adds a UNIQUE index on tasks \(execution_name\)/],
      ['alter table tasks alter column attempt drop default', /drops the default of tasks\.attempt/],
      ['alter table runs drop constraint runs_workflow_idempotency_key', /drops the constraint runs\.runs_workflow_idempotency_key/],
      ['alter table tasks rename column error to failure', /renames tasks\.error to failure/],
      ['alter table tasks rename to jobs', /renames tasks to jobs/],
      ['drop table concurrency_slots', /drops table concurrency_slots/],
      ['drop index runs_workflow_slot', /drops the unique index runs_workflow_slot/],
      ["delete from runs where status = 'cancelled'", /deletes rows of runs/],
      ['truncate task_attempts', /empties task_attempts/],
      ["update tasks set error = 'x' where error is null", /rewrites tasks \(error\)/],
      ["insert into workflows (name, definition, hash) values ('w', '{}', 'h')", /adds rows to workflows/],
      ["create function tickrun_f() returns int language sql as 'select 1'; create or replace function tickrun_f() returns int language sql as 'select 2'", /redefines the function tickrun_f/],
      ['create view tickrun_v as select 1 as a; create or replace view tickrun_v as select 2 as a', /redefines the view tickrun_v/],
      ["create type tickrun_e as enum ('a'); alter type tickrun_e rename value 'a' to 'b'", /renames the value a of tickrun_e/],
    ];
    it.each(contractions)('%s', async (sql, why) => {
      const found = await findContractions([...migrations, { name: '9999_throwaway', sql }]);
      expect(found.get('9999_throwaway')).toEqual([expect.objectContaining({ migration: '9999_throwaway', why: expect.stringMatching(why) })]);
    });

    it('nothing in what only expands', async () => {
      const sql = `
        create table tickrun_new (id int primary key, note text not null);
        alter table tickrun_new add column at timestamptz not null;
        alter table tasks add column owner text, add column rank int not null default 0, add column score int check (score > 0);
        create unique index tasks_owner on tasks (workflow, owner);
        alter table tasks add constraint tasks_owner_fk foreign key (owner) references tickrun_new (note);
        update tasks set owner = workflow;
        create index tasks_by_owner on tasks (owner);
        drop index tasks_by_owner;
        alter table tasks alter column attempt set default 1, alter column error drop not null;
        insert into tickrun_new values (1, 'a', now());
        create function tickrun_f() returns int language sql as 'select 1';
        create type tickrun_e as enum ('a'); alter type tickrun_e add value 'b';
        comment on table tasks is 'tasks'`;
      expect((await findContractions([...migrations, { name: '9999_throwaway', sql }])).get('9999_throwaway')).toEqual([]);
    });

    it('a statement of a kind it does not know, by refusing it, named', async () => {
      await expect(findContractions([...migrations, { name: '9999_throwaway', sql: 'do $$ begin perform 1; end $$' }])).rejects.toThrow(
        new UnknownStatementError('9999_throwaway: DoStmt is a statement the migration rule does not know (test/compat/contractions.ts): decide whether it is expand-only there. Statement: do $$ begin perform 1; end $$'),
      );
      await expect(findContractions([...migrations, { name: '9999_throwaway', sql: 'alter table tasks set (fillfactor = 50)' }])).rejects.toThrow(/ALTER TABLE tasks AT_SetRelOptions is a change the migration rule does not know/);
    });
  });
});
