-- Up Migration

-- Durations in milliseconds outgrow integer at about 24.8 days: a run pinned with a longer timeout or
-- backoff (files were not bounded before) could not be expanded. bigint holds any duration a file can
-- give (parseDuration stops at Number.MAX_SAFE_INTEGER).
alter table tasks alter column backoff_ms type bigint, alter column timeout_ms type bigint;
