-- Up Migration

-- A claim is a lease: its token names the claimant, so an outcome reported by a tick whose claim was
-- taken back (its lease ran out and another tick reconciled it) changes nothing. claimed_at bounds
-- the search for an execution the claimant may have started before it died.
alter table tasks add column lease_token uuid;
alter table tasks add column claimed_at timestamptz;
