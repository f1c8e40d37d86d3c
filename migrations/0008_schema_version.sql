-- Up Migration

-- The schema's version, which every tick reads in its probe (shared/steps/probe.ts): a tick refuses a
-- schema that lacks migrations it needs (version below its own) or that no longer lets it run (oldest_tick
-- above its own) with one error that says so, instead of failing statement by statement. Every later
-- migration sets version to its own number, and a breaking one sets oldest_tick too (migrations/README.md).
-- oldest_tick starts at 7: 0008 only adds this table, and the tick of 0007 never reads it.
create table tickrun_schema (
  -- A constant key: the table holds one row.
  one_row      boolean primary key default true check (one_row),
  version      integer not null,
  oldest_tick  integer not null
);
insert into tickrun_schema (version, oldest_tick) values (8, 7);
