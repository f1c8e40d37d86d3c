-- Up Migration

-- One row per workflow name; `apply` replaces the definition and bumps the version when the hash changes.
create table workflows (
  name        text primary key,
  definition  jsonb not null,
  hash        text not null,
  version     integer not null default 1,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now()
);

create table runs (
  id                uuid primary key default gen_random_uuid(),
  workflow          text not null references workflows (name),
  workflow_version  integer not null,
  -- The definition as it was at trigger time: an `apply` never changes a run in flight.
  definition        jsonb not null,
  status            text not null default 'pending'
                    check (status in ('pending', 'running', 'success', 'failed', 'cancelled')),
  params            jsonb not null default '{}',
  idempotency_key   text,
  triggered_by      text not null default 'manual',
  error             text,
  created_at        timestamptz not null default now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  -- Nulls are distinct: runs without a key never collide.
  constraint runs_workflow_idempotency_key unique (workflow, idempotency_key)
);

-- expand and complete look only at unfinished runs; `status` lists latest first.
create index runs_unfinished on runs (created_at) where status in ('pending', 'running');
create index runs_latest on runs (created_at desc);
create index runs_workflow_latest on runs (workflow, created_at desc);

create table tasks (
  id               uuid primary key default gen_random_uuid(),
  run_id           uuid not null references runs (id) on delete cascade,
  name             text not null,
  task_index       integer not null,
  -- waiting: dependencies not yet met; queued: ready once next_attempt_at has come;
  -- claimed: taken by a tick, being sent (lease_until bounds it); dispatched: the executor accepted it;
  -- running: the executor says it runs; then one of the terminal statuses.
  status           text not null
                   check (status in ('waiting', 'queued', 'claimed', 'dispatched', 'running',
                                     'success', 'failed', 'cancelled', 'skipped')),
  attempt          integer not null default 0,
  max_attempts     integer not null check (max_attempts >= 1),
  backoff_ms       integer not null,
  timeout_ms       integer,
  depends_on       text[] not null default '{}',
  -- Every task name this one depends on, directly or not: a failure in any of them skips it.
  ancestors        text[] not null default '{}',
  execution_name   text,
  next_attempt_at  timestamptz not null default now(),
  lease_until      timestamptz,
  deadline_at      timestamptz,
  checked_at       timestamptz,
  error            text,
  created_at       timestamptz not null default now(),
  started_at       timestamptz,
  finished_at      timestamptz,
  updated_at       timestamptz not null default now(),
  constraint tasks_run_name_index unique (run_id, name, task_index)
);

-- The design note's indexes: unfinished tasks by status, a run's tasks by status, executions by name.
create index tasks_unfinished on tasks (status, run_id)
  where status in ('waiting', 'queued', 'claimed', 'dispatched', 'running');
create index tasks_run_status on tasks (run_id, status);
create index tasks_execution_name on tasks (execution_name) where execution_name is not null;

-- claim: the oldest ready tasks first, without reading any other status.
create index tasks_ready on tasks (next_attempt_at) where status = 'queued';
-- poll: in-flight tasks, least recently checked first.
create index tasks_in_flight on tasks (checked_at nulls first) where status in ('dispatched', 'running');
-- reap: claims whose tick died before recording the dispatch.
create index tasks_claimed on tasks (lease_until) where status = 'claimed';
