import {
  ATTEMPT_END_STATUSES,
  BROKEN_STATUSES,
  ENDED_RUN_STATUSES,
  IN_FLIGHT_STATUSES,
  ON_EXECUTION_STATUSES,
  RUN_STATUSES,
  TASK_STATUSES,
  TERMINAL_TASK_STATUSES,
  UNFINISHED_RUN_STATUSES,
  UNFINISHED_TASK_STATUSES,
  UNSENT_STATUSES,
} from '../../shared/lifecycle';
import { APP_JS } from '../../shared/dashboard/assets/app';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

const sorted = (values: readonly string[]) => [...values].sort();
/** The quoted values of a constraint's or an index predicate's text, as Postgres prints it back. */
const quoted = (text: string) => sorted([...text.matchAll(/'([^']*)'/g)].map((m) => m[1]));

describe('the lifecycle and the schema agree', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  /** The values a table's check constraint on `status` allows. */
  async function checkedStatuses(table: string): Promise<string[]> {
    const { rows } = await db.pool.query(
      `select pg_get_constraintdef(c.oid) as def from pg_constraint c
       where c.conrelid = $1::regclass and c.contype = 'c' and pg_get_constraintdef(c.oid) like '%status%'`,
      [table],
    );
    expect(rows).toHaveLength(1);
    return quoted(rows[0].def);
  }

  /** The status values a partial index's predicate names. */
  async function indexStatuses(index: string): Promise<string[]> {
    const { rows } = await db.pool.query(
      'select pg_get_expr(i.indpred, i.indrelid) as pred from pg_index i where i.indexrelid = $1::regclass',
      [index],
    );
    return quoted(rows[0].pred);
  }

  it.each([
    ['runs', RUN_STATUSES],
    ['tasks', TASK_STATUSES],
    ['task_attempts', ATTEMPT_END_STATUSES],
  ])('%s.status allows exactly the statuses the lifecycle defines', async (table, statuses) => {
    expect(await checkedStatuses(table)).toEqual(sorted(statuses));
  });

  // The steps' statements select by these sets, and find their rows through these indexes only while the
  // sets and the predicates name the same statuses.
  it.each([
    ['runs_unfinished', UNFINISHED_RUN_STATUSES],
    ['tasks_unfinished', UNFINISHED_TASK_STATUSES],
    ['tasks_in_flight', ON_EXECUTION_STATUSES],
  ])('the partial index %s covers exactly its lifecycle set', async (index, statuses) => {
    expect(await indexStatuses(index)).toEqual(sorted(statuses));
  });
});

describe('the lifecycle sets', () => {
  const within = (set: readonly string[], all: readonly string[]) => set.every((s) => all.includes(s));

  it('split each status list into what has ended and what has not, with nothing in both', () => {
    expect(sorted([...UNFINISHED_TASK_STATUSES, ...TERMINAL_TASK_STATUSES])).toEqual(sorted(TASK_STATUSES));
    expect(sorted([...UNFINISHED_RUN_STATUSES, ...ENDED_RUN_STATUSES])).toEqual(sorted(RUN_STATUSES));
    expect(TERMINAL_TASK_STATUSES.filter((s) => (UNFINISHED_TASK_STATUSES as readonly string[]).includes(s))).toEqual([]);
  });

  it('nest as the steps rely on: on an execution is in flight, in flight and unsent are unfinished', () => {
    expect(within(ON_EXECUTION_STATUSES, IN_FLIGHT_STATUSES)).toBe(true);
    expect(within(IN_FLIGHT_STATUSES, UNFINISHED_TASK_STATUSES)).toBe(true);
    expect(sorted([...UNSENT_STATUSES, ...IN_FLIGHT_STATUSES])).toEqual(sorted(UNFINISHED_TASK_STATUSES));
    expect(within(ATTEMPT_END_STATUSES, TERMINAL_TASK_STATUSES)).toBe(true);
    expect(within(BROKEN_STATUSES, ATTEMPT_END_STATUSES)).toBe(true);
  });

  it('are the lists the dashboard script offers', () => {
    expect(APP_JS).toContain(`var RUN_STATUSES = ${JSON.stringify(RUN_STATUSES)};`);
    expect(APP_JS).toContain(`var TASK_STATUSES = ${JSON.stringify(TASK_STATUSES)};`);
    expect(APP_JS).toContain(`var LIVE = {${UNFINISHED_RUN_STATUSES.map((s) => `"${s}":1`).join(',')}};`);
  });

  // The page's own orders (the stacked bar's, and which status a graph node shows) are presentation, but
  // each must name every task status once, or a status added to the lifecycle would never be drawn.
  it.each(['ORDER', 'PRIORITY'])("the dashboard's %s is an order of every task status", (name) => {
    const list = new RegExp(`var ${name} = (\\[[^\\]]*\\]);`).exec(APP_JS);
    expect(list).not.toBeNull();
    expect(sorted(JSON.parse(list![1].replace(/'/g, '"')))).toEqual(sorted(TASK_STATUSES));
  });
});
