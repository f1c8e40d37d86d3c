-- Up Migration

-- Schedules: the slot each scheduled workflow waits for, and whether its schedule is paused.
alter table workflows add column next_slot_at timestamptz;
alter table workflows add column paused boolean not null default false;
alter table workflows add column concurrency integer check (concurrency >= 1);
create index workflows_due on workflows (next_slot_at) where next_slot_at is not null and not paused;

-- A run made by the schedule records its slot. The unique index is what makes a slot run exactly once:
-- ticks that overlap, or one that retries after dying, insert the same (workflow, slot) and all but
-- the first insert do nothing.
alter table runs add column scheduled_for timestamptz;
create unique index runs_workflow_slot on runs (workflow, scheduled_for) where scheduled_for is not null;

-- Per-workflow concurrency: a task of a limited workflow holds one of its slots while in flight
-- (claimed, dispatched, running). Taking a free slot with FOR UPDATE SKIP LOCKED is what keeps ticks
-- claiming at once from overshooting the limit; a slot row exists for each unit of the limit.
create table concurrency_slots (
  workflow  text not null references workflows (name) on delete cascade,
  slot      integer not null,
  task_id   uuid unique,
  primary key (workflow, slot)
);

-- Tasks name their workflow, and say whether it is limited, so that the claim reads ready tasks of
-- unlimited workflows from one index and those of limited ones per workflow, never both.
alter table tasks add column workflow text;
alter table tasks add column run_created_at timestamptz;
alter table tasks add column limited boolean not null default false;
update tasks t set workflow = r.workflow, run_created_at = r.created_at from runs r where r.id = t.run_id;
alter table tasks alter column workflow set not null;
alter table tasks alter column run_created_at set not null;

drop index tasks_ready;
create index tasks_ready on tasks (next_attempt_at) where status = 'queued' and not limited;
-- Over the limit, tasks wait their turn oldest run first.
create index tasks_ready_limited on tasks (workflow, run_created_at, id) where status = 'queued' and limited;
