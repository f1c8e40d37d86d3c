-- Up Migration

-- Fewer writes per task (docs/performance.md, row 9).

-- An attempt's history row is written once, when it ends. The attempt in flight is the task's own
-- current attempt: `tasks` now keeps when it was sent (dispatched_at), beside when it was claimed, and
-- the run page reads it from there. Sending a task then writes one row, not two.
alter table tasks add column dispatched_at timestamptz;

update tasks t set dispatched_at = a.dispatched_at
from task_attempts a
where a.task_id = t.id and a.attempt = t.attempt and t.status in ('dispatched', 'running');

delete from task_attempts where status in ('dispatched', 'running');

alter table task_attempts drop constraint task_attempts_status_check;
alter table task_attempts add constraint task_attempts_status_check check (status in ('success', 'failed', 'cancelled'));
alter table task_attempts alter column finished_at set not null;

-- History rows are written only by RECORD_SQL, beside the task row they describe, in the same statement:
-- a foreign key would read that task again for every row. Deleting a run deletes its attempts by run_id
-- (task_attempts_run).
alter table task_attempts drop constraint task_attempts_task_id_fkey;

-- Expired claims are found through tasks_unfinished (status leads it; claims are at most a few batches),
-- so a claim no longer adds an entry to an index of its own.
drop index tasks_claimed;
