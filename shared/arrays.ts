/**
 * Array tasks (`array: true` with `count: N`): N logical tasks, each its own row with its own status and
 * attempts, sent together as one Cloud Run execution of up to MAX_ARRAY_SIZE Cloud Run tasks instead of
 * N executions (docs/guarantees.md, "Array tasks").
 * - The claim takes an array task's ready rows at one attempt as one unit: one run request and one place
 *   under the region's cap for the whole execution (steps/claim.ts). The unit's lowest index heads it.
 * - The execution's env says which logical index each Cloud Run task runs: TICKRUN_TASK_INDEXES lists
 *   them, the CLOUD_RUN_TASK_INDEX-th is the container's (README, "Array tasks"). A retry sends only the
 *   indexes that failed, as a list.
 * - While it runs, only the head's row is polled: one status read per execution per cycle. When it ends,
 *   its outcome goes to every row; an end that is not a full success is told index by index from the
 *   Tasks API (executors/cloudRun.ts), one page per 1,000 Cloud Run tasks (steps/record.ts).
 */

/** Cloud Run's most tasks in one execution (cloud.google.com/run/quotas: "Maximum number of tasks per job: 10,000"). */
export const MAX_ARRAY_SIZE = 10_000;

/** The most array executions one claim takes: each may be MAX_ARRAY_SIZE rows, which bounds a claim's rows. */
export const ARRAY_UNITS_PER_CLAIM = 4;

/** The env variable naming the execution's head row, by which a lost answer is reconciled (executors/cloudRunListing.ts). */
export const ARRAY_ID_ENV = 'TICKRUN_ARRAY_ID';
/** The env variable listing the logical indexes an array execution runs, by CLOUD_RUN_TASK_INDEX. */
export const TASK_INDEXES_ENV = 'TICKRUN_TASK_INDEXES';

/**
 * Ascending indexes as TICKRUN_TASK_INDEXES writes them: comma-separated items, each `N` or an inclusive
 * range `A-B`, so a first attempt of 10,000 is `0-9999` and a retry of three `17,4242,9999`.
 */
export function formatIndexes(indexes: readonly number[]): string {
  const items: string[] = [];
  for (let i = 0; i < indexes.length; ) {
    let j = i;
    while (j + 1 < indexes.length && indexes[j + 1] === indexes[j] + 1) j++;
    items.push(j > i ? `${indexes[i]}-${indexes[j]}` : String(indexes[i]));
    i = j + 1;
  }
  return items.join(',');
}
