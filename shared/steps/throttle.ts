import type { Db } from '../db';
import { LOCAL_REGION, MIN_RATE_PER_MINUTE, regionOfName, regionRowsSql, THROTTLE_COOLDOWN_MS, THROTTLE_FACTOR } from '../regions';

// Cloud Run refused run requests of these tasks with 429: their regions' rate shrinks and their tokens
// are dropped, at most once per cooldown (one burst of refusals is one cut), and the refusals are
// counted for `tickrun status`. Its own statement, sent only after a batch had a 429, so a batch
// without one costs nothing more (shared/regions.ts).
export const THROTTLE_SQL = `
with hit as (
  select t.region, count(*)::int as n from tasks t
  where t.id = any ($1::uuid[]) and t.region is not null and t.region <> '${LOCAL_REGION}'
  group by t.region
), ${regionRowsSql('select region from hit')}, cut as (
  update regions g
  set run_rate = greatest(${MIN_RATE_PER_MINUTE}, coalesce(g.run_rate, g.run_ceiling, $2) * ${THROTTLE_FACTOR}),
      run_tokens = least(g.run_tokens, 0), throttled_at = now()
  from hit h join region_rows l on l.region = h.region
  where g.region = h.region and (g.throttled_at is null or g.throttled_at < now() - ${THROTTLE_COOLDOWN_MS} * interval '1 millisecond')
  returning g.region
)
-- After the cut (the scalar subquery runs it first): a region's row is locked before its usage row, in the
-- order the claim takes them, or this and a claim could each hold one and wait for the other.
insert into region_usage (region, minute, run_throttled)
select region, date_trunc('minute', now()), n from hit where (select count(*) from cut) >= 0
on conflict (region, minute) do update set run_throttled = region_usage.run_throttled + excluded.run_throttled`;

/** Slows the regions of tasks whose run request Cloud Run refused for quota (see THROTTLE_SQL). */
export async function slowThrottledRegions(db: Db, taskIds: string[], runPerMinute: number): Promise<void> {
  if (taskIds.length === 0) return;
  await db.query(THROTTLE_SQL, [taskIds, runPerMinute], 'tickrun_throttle');
}

// Reads Cloud Run refused with 429 (a status listing, an execution's read), counted per region for
// `tickrun status`; the poll leaves their tasks to a later cycle. Its own statement, only after such a refusal.
const READ_THROTTLE_SQL = `
insert into region_usage (region, minute, read_throttled)
select region, date_trunc('minute', now()), n from unnest($1::text[], $2::int[]) as r(region, n)
on conflict (region, minute) do update set read_throttled = region_usage.read_throttled + excluded.read_throttled`;


/** Counts reads refused for quota, one per name of an execution one of them was for (see READ_THROTTLE_SQL). */
export async function countThrottledReads(db: Db, executionNames: string[]): Promise<void> {
  const byRegion = new Map<string, number>();
  for (const name of executionNames) {
    const region = regionOfName(name);
    if (region) byRegion.set(region, (byRegion.get(region) ?? 0) + 1);
  }
  if (byRegion.size === 0) return;
  await db.query(READ_THROTTLE_SQL, [[...byRegion.keys()], [...byRegion.values()]], 'tickrun_read_throttle');
}
