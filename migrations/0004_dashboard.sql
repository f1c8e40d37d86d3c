-- Up Migration

-- Every attempt of every task, for the dashboard's timeline: `tasks` holds only the current attempt.
-- RECORD_SQL (shared/steps/record.ts) writes a row when the executor takes an attempt and its end when
-- it ends, inside the statement that already records the outcome: no round trip is added.
-- claimed_at: the claim that led to the send; dispatched_at: when the executor's acceptance was recorded
-- (for an attempt adopted by reconciliation, when it was adopted).
create table task_attempts (
  task_id         uuid not null references tasks (id) on delete cascade,
  attempt         integer not null,
  run_id          uuid not null,
  status          text not null check (status in ('dispatched', 'running', 'success', 'failed', 'cancelled')),
  execution_name  text,
  claimed_at      timestamptz,
  dispatched_at   timestamptz,
  finished_at     timestamptz,
  error           text,
  primary key (task_id, attempt)
);
-- One run's attempts, read by the run page.
create index task_attempts_run on task_attempts (run_id);

-- The runs page pages by (created_at, id), latest first, optionally filtered by workflow or status: each
-- index matches one of those orders exactly, so a page is an index range read from the cursor on,
-- as fast on the thousandth page as on the first. They replace the indexes on created_at alone.
drop index runs_latest;
drop index runs_workflow_latest;
create index runs_latest on runs (created_at desc, id desc);
create index runs_workflow_latest on runs (workflow, created_at desc, id desc);
create index runs_status_latest on runs (status, created_at desc, id desc);
