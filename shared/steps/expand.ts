import type { TickContext } from '../context';
import { errorText, isDataError } from '../errors';
import { log } from '../log';
import { ensureRegionsSql, regionOfSpecSql, runSpacingSql } from '../regions';

// Takes pending runs (skipping those another tick is expanding) and creates all of their tasks from the
// pinned definition: `count` rows per task name, `waiting` when it has dependencies, else `queued`.
// Run and tasks change in one statement, so a run is never half-expanded. A task is `limited` when its
// workflow has a concurrency limit: the claim then takes it only with a free slot (steps/claim.ts). The
// workflow's row is read under a share lock, so an `apply` changing the limit either goes first or waits
// for these tasks and then reroutes them (workflows/apply.ts).
const expandSql = (which: string, limit: string) => `
with pending as (
  select r.id, r.definition, r.workflow, r.created_at, w.concurrency is not null as limited, ${runSpacingSql('r')} as spacing
  from runs r join workflows w on w.name = r.workflow
  where ${which}
  order by r.created_at
  limit ${limit}
  for update of r skip locked
  for share of w
), planned as (
  select p.id as run_id, p.workflow, p.created_at, p.limited, t.key as name, i as task_index, t.value as spec,
         jsonb_array_length(t.value -> 'dependsOn') > 0 as waits, p.spacing,
         ${regionOfSpecSql('t.value', '$2::text', '$3::text')} as region
  from pending p
  cross join lateral jsonb_each(p.definition -> 'tasks') t
  cross join lateral generate_series(0, (t.value ->> 'count')::int - 1) i
), created as (
  -- A task ready now joins its region's fair order (shared/regions.ts); a waiting one when advance
  -- releases it.
  insert into tasks (run_id, workflow, run_created_at, limited, name, task_index, status, max_attempts, backoff_ms,
                     timeout_ms, depends_on, ancestors, region, fair_key, array_task)
  select q.run_id, q.workflow, q.created_at, q.limited, q.name, q.task_index,
         case when q.waits then 'waiting' else 'queued' end,
         (q.spec ->> 'retries')::int + 1,
         (q.spec ->> 'backoffMs')::bigint,
         (q.spec ->> 'timeoutMs')::bigint,
         array(select jsonb_array_elements_text(q.spec -> 'dependsOn')),
         array(select jsonb_array_elements_text(q.spec -> 'ancestors')),
         q.region,
         case when not q.waits
              then coalesce(g.pass, 0) + q.spacing * row_number() over (partition by q.run_id, q.region, q.waits order by q.name, q.task_index) end,
         coalesce((q.spec ->> 'array')::boolean, false)
  from planned q left join regions g on g.region = q.region
  returning 1
), ${ensureRegionsSql('select region from planned')}
update runs r set status = 'running', started_at = now()
from pending p
where r.id = p.id
returning r.id, (select count(*) from created)::int as tasks`;

/** The project and region a Cloud Run task without its own falls back to, as the executor's ($2, $3). */
const regionDefaults = ({ cloudRun }: TickContext['config']) => [cloudRun.defaultProject ?? null, cloudRun.defaultRegion ?? null];

/** Expands up to one batch of pending runs, oldest first: the fast path, one round trip. */
export const EXPAND_SQL = expandSql(`r.status = 'pending'`, '$1');

/** Expands one pending run: what a failed batch falls back to, so each run succeeds or fails alone. */
export const EXPAND_ONE_SQL = expandSql(`r.id = $1 and r.status = 'pending'`, '1');

// The runs a failed batch would have taken, to expand one by one.
const PENDING_SQL = `select id from runs where status = 'pending' order by created_at limit $1`;

// A run whose definition cannot become tasks ends `failed` with the reason, so it neither stays pending
// nor fails the batch of every later cycle.
const REFUSE_SQL = `update runs set status = 'failed', error = $2, finished_at = now() where id = $1 and status = 'pending'`;

/** Expands up to one batch of pending runs into their tasks. Returns how many runs started. */
export async function expandPendingRuns(ctx: TickContext): Promise<{ runsStarted: number; tasksCreated: number }> {
  const { db, config } = ctx;
  try {
    const { rows } = await db.query<{ id: string; tasks: number }>(EXPAND_SQL, [config.batchSize, ...regionDefaults(config)], 'tickrun_expand');
    return { runsStarted: rows.length, tasksCreated: rows[0]?.tasks ?? 0 };
  } catch (err) {
    // Only a run's own data fails this way; a lost connection or a timeout still fails the tick.
    if (!isDataError(err)) throw err;
  }
  return expandOneByOne(ctx);
}

/** The batch's runs, each in a statement of its own: a run its data refuses ends failed, the others start. */
async function expandOneByOne(ctx: TickContext): Promise<{ runsStarted: number; tasksCreated: number }> {
  const { db, config } = ctx;
  const { rows: pending } = await db.query<{ id: string }>(PENDING_SQL, [config.batchSize], 'tickrun_expand_pending');
  const result = { runsStarted: 0, tasksCreated: 0 };
  for (const { id } of pending) {
    try {
      const { rows } = await db.query<{ id: string; tasks: number }>(EXPAND_ONE_SQL, [id, ...regionDefaults(config)], 'tickrun_expand_one');
      result.runsStarted += rows.length;
      result.tasksCreated += rows[0]?.tasks ?? 0;
    } catch (err) {
      if (!isDataError(err)) throw err;
      const reason = `its pinned definition could not be expanded: ${errorText(err)}`;
      await db.query(REFUSE_SQL, [id, reason], 'tickrun_expand_refuse');
      log('ERROR', `run ${id} failed: ${reason}`, { run_id: id });
    }
  }
  return result;
}
