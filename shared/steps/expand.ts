import type { TickContext } from '../context';

// Takes pending runs (skipping those another tick is expanding) and creates all of their tasks from the
// pinned definition: `count` rows per task name, `waiting` when it has dependencies, else `queued`.
// Run and tasks change in one statement, so a run is never half-expanded. A task is `limited` when its
// workflow has a concurrency limit: the claim then takes it only with a free slot (steps/claim.ts).
export const EXPAND_SQL = `
with pending as (
  select r.id, r.definition, r.workflow, r.created_at, w.concurrency is not null as limited
  from runs r join workflows w on w.name = r.workflow
  where r.status = 'pending'
  order by r.created_at
  limit $1
  for update of r skip locked
), created as (
  insert into tasks (run_id, workflow, run_created_at, limited, name, task_index, status, max_attempts, backoff_ms,
                     timeout_ms, depends_on, ancestors)
  select p.id, p.workflow, p.created_at, p.limited, t.key, i,
         case when jsonb_array_length(t.value -> 'dependsOn') > 0 then 'waiting' else 'queued' end,
         (t.value ->> 'retries')::int + 1,
         (t.value ->> 'backoffMs')::int,
         (t.value ->> 'timeoutMs')::int,
         array(select jsonb_array_elements_text(t.value -> 'dependsOn')),
         array(select jsonb_array_elements_text(t.value -> 'ancestors'))
  from pending p
  cross join lateral jsonb_each(p.definition -> 'tasks') t
  cross join lateral generate_series(0, (t.value ->> 'count')::int - 1) i
  returning 1
)
update runs r set status = 'running', started_at = now()
from pending p
where r.id = p.id
returning r.id, (select count(*) from created)::int as tasks`;

/** Expands up to one batch of pending runs into their tasks. Returns how many runs started. */
export async function expandPendingRuns(ctx: TickContext): Promise<{ runsStarted: number; tasksCreated: number }> {
  const { db, config } = ctx;
  const { rows } = await db.query<{ id: string; tasks: number }>(EXPAND_SQL, [config.batchSize], 'tickrun_expand');
  return { runsStarted: rows.length, tasksCreated: rows[0]?.tasks ?? 0 };
}
