import type { Pool } from 'pg';
import type { RunStatus } from '../lifecycle';
import type { WorkflowDefinition } from '../workflows/definition';

/** How many of a workflow's latest runs the workflows page shows. */
export const LAST_RUNS = 10;

/** One workflow on the workflows page. */
export interface WorkflowSummary {
  name: string;
  description: string | null;
  version: number;
  updatedAt: string;
  schedule: string | null;
  timezone: string | null;
  /** The next schedule slot; null without a schedule or while paused. */
  nextSlotAt: string | null;
  paused: boolean;
  concurrency: number | null;
  /** The definition as applied (defaults merged into every task). */
  definition: WorkflowDefinition;
  /** Its latest runs, latest first. */
  lastRuns: { id: string; status: RunStatus; createdAt: string; finishedAt: string | null }[];
}

// Each workflow's latest runs come from the runs (workflow, created_at, id) index, LAST_RUNS rows each.
const WORKFLOWS_SQL = `
select w.name, w.definition, w.version, w.updated_at, w.next_slot_at, w.paused, w.concurrency,
       coalesce(l.runs, '[]') as last_runs
from workflows w
left join lateral (
  select jsonb_agg(jsonb_build_object('id', r.id, 'status', r.status, 'createdAt', r.created_at, 'finishedAt', r.finished_at)
                   order by r.created_at desc, r.id desc) as runs
  from (select id, status, created_at, finished_at from runs where workflow = w.name
        order by created_at desc, id desc limit $1) r
) l on true
order by w.name`;

/** Every workflow with its schedule, next slot, limit and latest runs' outcomes (the CLI's and the dashboard's list). */
export async function listWorkflows(pool: Pool): Promise<WorkflowSummary[]> {
  const { rows } = await pool.query(WORKFLOWS_SQL, [LAST_RUNS]);
  return rows.map((w) => ({
    name: w.name,
    description: w.definition.description ?? null,
    version: w.version,
    updatedAt: w.updated_at.toISOString(),
    schedule: w.definition.schedule ?? null,
    timezone: w.definition.schedule ? (w.definition.timezone ?? 'UTC') : null,
    nextSlotAt: w.next_slot_at && !w.paused ? w.next_slot_at.toISOString() : null,
    paused: w.paused,
    concurrency: w.concurrency ?? w.definition.concurrency ?? null,
    definition: w.definition,
    // jsonb renders timestamps in the session's time zone; the API speaks UTC ISO like everywhere else.
    lastRuns: w.last_runs.map((r: any) => ({ id: r.id, status: r.status, createdAt: new Date(r.createdAt).toISOString(), finishedAt: r.finishedAt ? new Date(r.finishedAt).toISOString() : null })),
  }));
}
