import type { Pool } from 'pg';
import { applyWorkflows } from '../../shared/workflows/apply';
import { parseWorkflow } from '../../shared/workflows/parse';
import { triggerRun } from '../../shared/operator/trigger';

/** A workflow of the chaos workload with what every run of it must end as. */
interface ChaosWorkflow {
  yaml: (n: number) => string;
  /** The run's status once everything has ended. */
  runStatus: 'success' | 'failed' | 'cancelled';
  /**
   * Each task name's final status and the attempts it must have taken: no more, whatever the faults.
   * `sent or not`: a task of a run cancelled mid-way took 1 attempt if it was sent before the cancel, else 0.
   * `retriedIndexes`: the logical tasks of an array task that took one attempt more.
   */
  tasks: Record<string, { status: string; attempts: number | 'sent or not'; retriedIndexes?: number[] }>;
  /** What the chaos driver does to a run of it while it runs. */
  disturb?: 'cancel' | 'change limit';
}

const JOB = 'projects/chaos/locations/us-central1/jobs';

// DAGs of n tasks each (n divisible by 10): a clean one, one whose fan-out fails its first attempt
// everywhere, one where a task fails for good so that its downstream is skipped, one whose first attempts
// (an array task's: one execution) run past their timeout, one whose runs are cancelled mid-way, one whose
// array task has two indexes fail once, and one whose concurrency limit is changed, then removed, while
// it runs. CHAOS_SLOW_UNTIL=N: attempts before N run for a minute.
export const WORKFLOWS: Record<string, ChaosWorkflow> = {
  'chaos-clean': {
    yaml: (n) => `name: chaos-clean

tasks:
  extract: { job: ${JOB}/extract, count: ${0.4 * n} }
  transform: { job: ${JOB}/transform, count: ${0.4 * n}, depends_on: [extract] }
  load: { job: ${JOB}/load, count: ${0.2 * n}, depends_on: [transform] }
`,
    runStatus: 'success',
    tasks: { extract: { status: 'success', attempts: 1 }, transform: { status: 'success', attempts: 1 }, load: { status: 'success', attempts: 1 } },
  },
  'chaos-flaky': {
    yaml: (n) => `name: chaos-flaky
defaults: { retries: 2, backoff: 100ms }
tasks:
  extract: { job: ${JOB}/extract, count: ${0.4 * n}, env: { EMU_FAIL: "attempts<2" } }
  transform: { job: ${JOB}/transform, count: ${0.4 * n}, depends_on: [extract] }
  load: { job: ${JOB}/load, count: ${0.2 * n}, depends_on: [transform] }
`,
    runStatus: 'success',
    tasks: { extract: { status: 'success', attempts: 2 }, transform: { status: 'success', attempts: 1 }, load: { status: 'success', attempts: 1 } },
  },
  'chaos-failing': {
    yaml: (n) => `name: chaos-failing

tasks:
  extract: { job: ${JOB}/extract, count: ${0.4 * n} }
  bad: { job: ${JOB}/bad, retries: 1, backoff: 100ms, env: { EMU_FAIL: "1" } }
  after_bad: { job: ${JOB}/after-bad, count: ${0.4 * n - 1}, depends_on: [bad] }
  load: { job: ${JOB}/load, count: ${0.2 * n}, depends_on: [extract] }
`,
    runStatus: 'failed',
    tasks: {
      extract: { status: 'success', attempts: 1 },
      bad: { status: 'failed', attempts: 2 },
      after_bad: { status: 'skipped', attempts: 0 },
      load: { status: 'success', attempts: 1 },
    },
  },
  'chaos-timeout': {
    yaml: (n) => `name: chaos-timeout
defaults: { retries: 1, backoff: 100ms }
tasks:
  slow: { job: ${JOB}/slow, array: true, count: ${0.5 * n}, timeout: 1s, env: { CHAOS_SLOW_UNTIL: "2" } }
  after: { job: ${JOB}/after, count: ${0.5 * n}, depends_on: [slow] }
`,
    runStatus: 'success',
    tasks: { slow: { status: 'success', attempts: 2 }, after: { status: 'success', attempts: 1 } },
  },
  'chaos-cancelled': {
    yaml: (n) => `name: chaos-cancelled
tasks:
  long: { job: ${JOB}/long, count: ${0.5 * n}, env: { CHAOS_SLOW_UNTIL: "99" } }
  after: { job: ${JOB}/after, count: ${0.5 * n}, depends_on: [long] }
`,
    runStatus: 'cancelled',
    tasks: { long: { status: 'cancelled', attempts: 'sent or not' }, after: { status: 'cancelled', attempts: 0 } },
    disturb: 'cancel',
  },
  'chaos-array': {
    yaml: (n) => `name: chaos-array
defaults: { retries: 2, backoff: 100ms }
tasks:
  fan: { job: ${JOB}/fan, array: true, count: ${0.5 * n}, env: { EMU_FAIL_INDEXES: "1,3", EMU_FAIL: "attempts<2" } }
  after: { job: ${JOB}/after, count: ${0.5 * n}, depends_on: [fan] }
`,
    runStatus: 'success',
    tasks: { fan: { status: 'success', attempts: 1, retriedIndexes: [1, 3] }, after: { status: 'success', attempts: 1 } },
  },
  'chaos-limited': {
    yaml: (n) => limitedYaml(n, 3),
    runStatus: 'success',
    tasks: { work: { status: 'success', attempts: 2 }, then: { status: 'success', attempts: 1 } },
    disturb: 'change limit',
  },
};

/** chaos-limited with a concurrency limit, or none; its work fails a first attempt so that retries meet the change. */
export function limitedYaml(n: number, concurrency: number | null): string {
  return `name: chaos-limited
${concurrency === null ? '' : `concurrency: ${concurrency}\n`}defaults: { retries: 1, backoff: 100ms }
tasks:
  work: { job: ${JOB}/work, count: ${0.5 * n}, env: { EMU_FAIL: "attempts<2" } }
  then: { job: ${JOB}/then, count: ${0.5 * n}, depends_on: [work] }
`;
}

/** Applies the workflows and triggers `runs` runs of `tasksPerRun` tasks, round robin. */
export async function seedWorkload(pool: Pool, runs: number, tasksPerRun: number): Promise<Map<string, string>> {
  const names = Object.keys(WORKFLOWS);
  await applyWorkflows(pool, names.map((name) => parseWorkflow(WORKFLOWS[name].yaml(tasksPerRun), `/chaos/${name}.yaml`)));
  const runs_ = new Map<string, string>();
  for (let i = 0; i < runs; i++) {
    const workflow = names[i % names.length];
    runs_.set((await triggerRun(pool, workflow)).runId, workflow);
  }
  return runs_;
}
