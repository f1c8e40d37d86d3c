import type { Pool } from 'pg';
import { applyWorkflows } from '../../shared/workflows/apply';
import { parseWorkflow } from '../../shared/workflows/parse';
import { triggerRun } from '../../shared/operator/trigger';

/** A workflow of the chaos workload with what every run of it must end as. */
interface ChaosWorkflow {
  yaml: (n: number) => string;
  /** The run's status once everything has ended. */
  runStatus: 'success' | 'failed';
  /** Each task name's final status and the attempts it must have taken: no more, whatever the faults. */
  tasks: Record<string, { status: string; attempts: number }>;
}

const JOB = 'projects/chaos/locations/us-central1/jobs';

// Three DAGs of n tasks each (n divisible by 10): a clean one, one whose fan-out fails its first attempt
// everywhere, and one where a task fails for good so that its downstream is skipped.
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
};

/** Applies the three workflows and triggers `runs` runs of `tasksPerRun` tasks, round robin. */
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
