-- Up Migration

-- Cloud Run's limits, shared by every tick: per (project, region) a budget of job-run requests, the cap
-- of running executions, and where new work joins the claim's fair order (shared/regions.ts). Expand-only:
-- the tick of 0008 leaves the new columns null and its tasks are claimed without a budget.

-- A Cloud Run task's region, `project/region` of its job; '' for a task run on this machine (a process),
-- which no budget limits. Null for tasks made before 0009, claimed as '' is.
alter table tasks add column region text;
-- The claim's order among ready tasks: each run's tasks are spaced by its share (its workflow's priority,
-- divided among that workflow's running runs) from where the region's claims are when they become ready,
-- so a run triggered after a large fan-out is interleaved with it instead of queued behind it.
alter table tasks add column fair_key double precision;
create index tasks_ready_fair on tasks (region, fair_key) where status = 'queued';

create table regions (
  region          text primary key,
  -- What `tickrun regions set` configured for this region; null: the tick's setting (TICKRUN_*).
  run_per_minute  integer check (run_per_minute > 0),
  read_per_minute integer check (read_per_minute > 0),
  max_running     integer check (max_running between 1 and 10000),
  reserved        integer check (reserved >= 0),
  -- The run budget's state: the rate now allowed (per minute, shrunk by 429s and grown back; null: the
  -- ceiling), the ceiling and the cap the last claim used (the tick's settings, which the CLI may not
  -- share), the tokens left and when they were counted.
  run_rate        double precision,
  run_ceiling     double precision,
  cap             integer,
  run_tokens      double precision not null default 0,
  refilled_at     timestamptz,
  -- The last 429 that shrank the rate.
  throttled_at    timestamptz,
  -- The read budget: the ceiling the last poll used, the tokens left (below zero: reads owed, the poll of
  -- this region waits) and when they were counted.
  read_ceiling    double precision,
  read_tokens     double precision not null default 0,
  read_refilled_at timestamptz,
  -- The fair_key of the newest claim here: where a task that becomes ready joins the order.
  pass            double precision not null default 0,
  -- Cloud Run tasks of this region in flight, against the running-executions cap: the claim adds what it
  -- takes and the statement that records a task leaving flight (the only way out) takes it off, each
  -- under this row's lock, so ticks at once read the count the one before left.
  running         integer not null default 0,
  created_at      timestamptz not null default now()
);

-- What each region's calls did per minute: run requests sent, and 429s, for `tickrun status` and the
-- dashboard (budget used, 429s in the last hour).
create table region_usage (
  region          text not null,
  minute          timestamptz not null,
  run_calls       integer not null default 0,
  run_throttled   integer not null default 0,
  read_calls      integer not null default 0,
  read_throttled  integer not null default 0,
  primary key (region, minute)
);

update tickrun_schema set version = 9;
