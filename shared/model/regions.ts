import type { Pool } from 'pg';
import type { RegionLimits } from '../config';
import { LOCAL_REGION, refilledSql, RUN_HEADROOM } from '../regions';

/** One region's Cloud Run limits and how they are being spent, as `tickrun regions` and the dashboard show them. */
export interface RegionView {
  /** `project/region`. */
  region: string;
  /** The run budget's ceiling, per minute: the region's own (`tickrun regions set`), else the ticks' setting. */
  runPerMinute: number;
  /** Whether runPerMinute is the region's own. */
  ownRunPerMinute: boolean;
  /** The rate allowed now, per minute: the ceiling, unless 429s shrank it. */
  rate: number;
  /** Run requests sent in the last 60 s. */
  usedLastMinute: number;
  /** The read budget per minute: the region's own, else the ticks' setting. */
  readPerMinute: number;
  /** Read requests sent in the last 60 s. */
  readsLastMinute: number;
  /** Requests Cloud Run refused with 429 in the last hour. */
  throttledLastHour: number;
  throttledAt: string | null;
  /** Executions in flight, against… */
  running: number;
  /** …the cap: the maximum less the reserve. */
  cap: number;
  /** Tasks queued in the region. */
  queued: number;
  /** Why the region holds its queued tasks back, when it does. */
  holding: string | null;
}

// Per region (the process tasks' '' aside), in one statement over the small tables. The ceiling and the
// cap are the region's own when set, else what the ticks last used (`run_ceiling`, `cap`: their settings,
// which this command's environment may not share), else this command's settings ($1–$4). The calls of
// the last 60 s are the current minute's and the part of the previous minute still within them.
const REGIONS_SQL = `
select g.region, g.run_per_minute is not null as own,
       coalesce(g.run_per_minute, g.run_ceiling, $1)::float8 as ceiling,
       least(coalesce(g.run_per_minute, g.run_ceiling, $1), coalesce(g.run_rate, g.run_per_minute, g.run_ceiling, $1))::float8 as rate,
       case when g.max_running is not null or g.reserved is not null
            then greatest(0, coalesce(g.max_running, $2) - coalesce(g.reserved, $3))
            else coalesce(g.cap, $2 - $3) end as cap,
       g.throttled_at,
       ${refilledSql('g.run_tokens', 'g.refilled_at', 'coalesce(g.run_rate, g.run_ceiling, $1)')}::float8 as tokens,
       g.running,
       (select count(*)::int from tasks t where t.region = g.region and t.status = 'queued') as queued,
       coalesce(g.read_per_minute, g.read_ceiling, $4)::float8 as read_ceiling,
       (select coalesce(sum(case when u.minute = date_trunc('minute', now()) then u.run_calls
                                 else u.run_calls * (1 - extract(second from now()) / 60) end), 0)::float8
        from region_usage u where u.region = g.region and u.minute >= date_trunc('minute', now()) - interval '1 minute') as used,
       (select coalesce(sum(case when u.minute = date_trunc('minute', now()) then u.read_calls
                                 else u.read_calls * (1 - extract(second from now()) / 60) end), 0)::float8
        from region_usage u where u.region = g.region and u.minute >= date_trunc('minute', now()) - interval '1 minute') as reads,
       (select coalesce(sum(u.run_throttled + u.read_throttled), 0)::int
        from region_usage u where u.region = g.region and u.minute > now() - interval '1 hour') as throttled
from regions g
where g.region <> '${LOCAL_REGION}'
order by g.region`;

/** Every region tickrun has sent work to, with its limits and use (see RegionView). */
export async function listRegions(pool: Pool, limits: RegionLimits): Promise<RegionView[]> {
  const { rows } = await pool.query(REGIONS_SQL, [limits.runPerMinute, limits.maxRunning, limits.reserved, limits.readPerMinute]);
  return rows.map((r) => {
    const view: RegionView = {
      region: r.region, runPerMinute: r.ceiling, ownRunPerMinute: r.own, rate: Math.round(r.rate * 10) / 10,
      usedLastMinute: Math.round(r.used), readPerMinute: r.read_ceiling, readsLastMinute: Math.round(r.reads), throttledLastHour: r.throttled, throttledAt: r.throttled_at?.toISOString() ?? null,
      running: r.running, cap: r.cap, queued: r.queued, holding: null,
    };
    view.holding = holdingReason(view, r.tokens);
    return view;
  });
}

/** Why a region holds its queued tasks back, the first that applies; null when it does not. */
export function holdingReason(r: Omit<RegionView, 'holding'>, tokens: number): string | null {
  if (r.queued === 0) return null;
  if (r.running >= r.cap) return `at its cap: ${r.running} of ${r.cap} running`;
  if (tokens < 1 || r.usedLastMinute >= r.rate * RUN_HEADROOM) return `at its run budget: ${r.usedLastMinute} of ${Math.round(r.rate)}/min`;
  if (r.rate < r.runPerMinute) return `slowed by 429s: rate ${Math.round(r.rate)} of ${r.runPerMinute}/min`;
  return null;
}
