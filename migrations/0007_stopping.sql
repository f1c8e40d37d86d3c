-- Up Migration

-- Stopping an attempt (its run cancelled, or past its timeout) is asked of the executor, and the attempt
-- stays in flight until its execution is seen ended: Cloud Run's cancel takes effect some time after it
-- is accepted, and a retry must not overlap the execution it replaces. Why it is stopped is read from
-- the run's status and the task's deadline.
-- stop_asked_at: when tickrun first asked the executor to stop the attempt's execution;
-- stop_sent_at: when the executor accepted, after which the cancel is not sent again.
-- Both are cleared when the attempt ends (steps/record.ts).
alter table tasks add column stop_asked_at timestamptz;
alter table tasks add column stop_sent_at timestamptz;
