-- Up Migration

-- Array tasks (a task with `array: true`): N logical tasks, each its own row, sent together as executions
-- of up to 10,000 Cloud Run tasks (shared/arrays.ts). Expand-only: the tick of 0009 never makes such rows,
-- and leaves both columns at their defaults.

-- Whether the row is a logical task of an array task.
alter table tasks add column array_task boolean not null default false;
-- The row that heads the execution this row was last claimed into: the group's lowest index, whose id
-- the execution carries (TICKRUN_ARRAY_ID) so that a lost answer can be reconciled. While the execution
-- is in flight, only the head is polled; every row of the group takes its end from the head's check.
alter table tasks add column array_head uuid;

-- poll: the in-flight tasks that are checked (a plain task, or an array execution's head), least recently
-- checked first, without reading past the other rows of a 10,000-row array execution.
create index tasks_polled on tasks (checked_at nulls first)
  where status in ('dispatched', 'running') and (array_head is null or array_head = id);
-- The rows of one array execution, when the head's outcome is recorded or its lost claim reconciled.
create index tasks_array_head on tasks (array_head) where array_head is not null;

update tickrun_schema set version = 10;
