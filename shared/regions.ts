/**
 * Cloud Run's limits per (project, region), kept in Postgres and shared by every tick (the `regions`
 * table, migration 0009), defined once here; steps/claim.ts, steps/expand.ts, steps/advance.ts,
 * steps/poll.ts and steps/record.ts build their statements from these rules:
 *
 * - **The run budget.** Each region has a rate of job run requests per minute, at most its ceiling
 *   (`tickrun regions set`, else TICKRUN_RUN_REQUESTS_PER_MINUTE). The claim spends one token per Cloud
 *   Run task it claims, in the statement that claims them and under a lock on the region's row, so ticks
 *   claiming at once never spend more than there is. Tokens come back at RUN_HEADROOM of the rate, and at
 *   most BURST_SECONDS of them are kept: in any 60 s, what is sent stays under the quota even when the
 *   calls go out a little after their claims (Cloud Run does not say whether its per-minute windows roll
 *   or are fixed; this holds for both).
 * - **Adaptive.** A 429 from Cloud Run (the quota is lower than configured, or other clients share it)
 *   multiplies the rate by THROTTLE_FACTOR and drops the tokens, at most once per THROTTLE_COOLDOWN_MS
 *   (a burst of refusals is one cut); each minute of claiming without one grows it back by
 *   GROWTH_PER_MINUTE of the ceiling. The rate is the region's, so every tick follows what one learned.
 * - **The running-executions cap.** At most `max_running - reserved` (TICKRUN_MAX_RUNNING_EXECUTIONS less
 *   TICKRUN_RESERVED_EXECUTIONS) Cloud Run tasks in flight per region: the region's row counts them
 *   (`running`), the claim adding what it takes under the row's lock and the statement that records a
 *   task out of flight (the only way out) taking it off. A lowered cap is reached as executions end.
 * - **The fair order.** Ready tasks are claimed by `fair_key`, not by age: when a run's tasks become ready
 *   they are spaced by the run's share from the region's `pass` (the key of its newest claim), so runs
 *   take turns, a run of priority 2 twice as often as one of priority 1, and a run triggered after a
 *   10,000-task fan-out starts within a cycle instead of after it. A run's share is its workflow's
 *   priority divided among that workflow's running runs, so workflows share by priority and the runs of
 *   one workflow share its part. Retries and tasks given back keep their key, so they go first.
 */

/** The region of tasks run on this machine (`process`), which no budget or cap limits. */
export const LOCAL_REGION = '';

/** Tokens come back at this part of the rate. */
export const RUN_HEADROOM = 0.97;
/** At most this many seconds of tokens are kept (at least one token). */
export const BURST_SECONDS = 1;
/** A 429 multiplies the region's rate by this… */
export const THROTTLE_FACTOR = 0.7;
/**
 * …at most once in this long. Cloud Run may go on refusing for as long as its window holds the calls
 * already accepted (up to a minute after a quota is lowered): cut at every refusal, the rate would fall
 * to nothing while that window drains, and take minutes to grow back.
 */
export const THROTTLE_COOLDOWN_MS = 10_000;
/** Each minute of claiming without a 429 adds this part of the ceiling back to the rate. */
export const GROWTH_PER_MINUTE = 0.1;
/** The rate never falls below this many requests per minute, so a region always recovers. */
export const MIN_RATE_PER_MINUTE = 1;
/**
 * The read budget. Every read a tick makes of a region (status listings, an execution or job read, the
 * search for a lost dispatch) spends a token of that region's read budget (`tickrun regions set`, else
 * TICKRUN_READ_REQUESTS_PER_MINUTE). The poll takes the reads its checks will need from the budget in
 * the statement that picks them (steps/poll.ts), so ticks polling at once never spend the same tokens;
 * the statement that records the checks settles what they really cost (pages past the first, a read of a
 * job). A region whose tokens are below one is left out of the polls until they have come back, so
 * reads keep to the budget's pace over any minute, ahead of it by at most one poll's reads.
 */

/** The Cloud Run RPCs that spend a region's read budget ("Read requests per minute per region"). */
export const READ_RPCS: ReadonlySet<string> = new Set(['getExecution', 'listExecutions', 'getJob', 'getOperation', 'listTasks', 'getTask']);

/** The region (`project/region`) of a Cloud Run job, execution or operation name, else undefined. */
export const regionOfName = (name: string): string | undefined => /^projects\/([^/]+)\/locations\/([^/]+)(\/|$)/.exec(name)?.slice(1, 3).join('/');

/** SQL: the most tokens a bucket refilled at `perMinute` keeps: BURST_SECONDS of its pace, at least one. */
export const burstSql = (perMinute: string) => `greatest(1, ${perMinute} * ${RUN_HEADROOM} * ${BURST_SECONDS} / 60)`;

/**
 * SQL: the tokens of a bucket refilled until now at `perMinute` (its pace: RUN_HEADROOM of it), keeping at
 * most BURST_SECONDS of them (at least one); `tokens` and `at` are its columns. The run budget and the
 * read budget are both such buckets.
 */
export const refilledSql = (tokens: string, at: string, perMinute: string) => `
  least(${burstSql(perMinute)},
        ${tokens} + ${perMinute} * ${RUN_HEADROOM} * least(60, extract(epoch from now() - coalesce(${at}, now() - interval '1 minute'))) / 60)`;

/**
 * SQL: the region (`project/region`) of a task from its spec (jsonb), as the Cloud Run executor names the
 * job: a full job name's own, else the task's project and region, else the tick's defaults (`project`,
 * `region`: SQL expressions, null when unset). `?` stands for a part that is missing (that task's
 * dispatch is refused for it); '' for a process task.
 */
export const regionOfSpecSql = (spec: string, project: string, region: string) => `
  case when ${spec} ->> 'executor' = 'process' then '${LOCAL_REGION}'
       when ${spec} ->> 'job' ~ '^projects/[^/]+/locations/[^/]+/jobs/'
         then split_part(${spec} ->> 'job', '/', 2) || '/' || split_part(${spec} ->> 'job', '/', 4)
       else coalesce(${spec} ->> 'project', ${project}, '?') || '/' || coalesce(${spec} ->> 'region', ${region}, '?') end`;

/**
 * SQL: the space between the fair keys of one run's tasks, `r` the run: its workflow's running runs (this
 * one too, when it is being expanded) over the workflow's priority.
 */
export const runSpacingSql = (r: string) => `
  (greatest(1, (select count(*) from runs x where x.workflow = ${r}.workflow and x.status = 'running') + (${r}.status = 'pending')::int)::float8
   / coalesce((${r}.definition ->> 'priority')::float8, 1))`;

/**
 * SQL: the CTE `region_rows`, locking the rows of the regions `regionsOf` (a query of region names) in
 * the regions' order. Every statement that changes several regions' rows locks them so (the claim in its
 * own read of them), or two statements locking them in two orders could each wait for the other.
 */
export const regionRowsSql = (regionsOf: string) => `region_rows as (
  select g.region from regions g where g.region in (${regionsOf}) order by g.region for no key update
)`;

/**
 * SQL: creates the rows of regions first seen in `source` (a query with a `region` column). Two ticks
 * creating the same region at once: the second waits on the key and adds nothing.
 */
export const ensureRegionsSql = (source: string) => `
new_regions as (
  insert into regions (region)
  select distinct region from (${source}) s where region is not null
  on conflict (region) do nothing
  returning region
)`;

/**
 * SQL over a region's row `g`: ms until its bucket holds a burst of tokens again (0 when it does), from
 * the rate of the last claim. The tick wakes for it when the region has ready tasks, so a budget spent
 * is claimed again as soon as it refills, not a poll interval later.
 */
export const budgetRefillMsSql = (g: string) => {
  const pacePerMs = `(coalesce(${g}.run_rate, ${g}.run_ceiling) * ${RUN_HEADROOM} / 60000)`;
  const burst = `greatest(1, ${pacePerMs} * ${BURST_SECONDS * 1000})`;
  const now = refilledSql(`${g}.run_tokens`, `${g}.refilled_at`, `coalesce(${g}.run_rate, ${g}.run_ceiling)`);
  return `greatest(0, (${burst} - ${now}) / ${pacePerMs})`;
};
