import type { TickSummary } from '../../shared/cycle';
import { tick } from '../../shared/tick';
import { emulatorHarness, type Harness } from '../helpers/harness';

const JOB = 'projects/demo/locations/us-central1/jobs/work';

/** When each task of a run was sent and when its end was recorded, by the database's clock. */
async function timestamps(h: Harness, runId: string): Promise<Record<string, { status: string; dispatchedAt: Date | null; finishedAt: Date | null }>> {
  const { rows } = await h.db.pool.query('select name, status, dispatched_at, finished_at from tasks where run_id = $1', [runId]);
  return Object.fromEntries(rows.map((r) => [r.name, { status: r.status, dispatchedAt: r.dispatched_at, finishedAt: r.finished_at }]));
}

// A chain a → b of tasks that end at once: the cycle that records a's end releases b, and should send it
// too rather than leave it queued for the next cycle (a whole poll interval per layer of a DAG).
describe('a dependent is sent in the cycle that records its parent’s end', () => {
  let h: Harness;
  emulatorHarness((started) => ({ h } = started));
  const chains: Record<string, string> = {
    'Cloud Run': `name: chain-run\ntasks:\n  a: { job: ${JOB} }\n  b: { job: ${JOB}, depends_on: [a] }\n`,
    process: `name: chain-process\ntasks:\n  a: { executor: process, command: ["node", "-e", ""] }\n  b: { executor: process, command: ["node", "-e", ""], depends_on: [a] }\n`,
  };
  it.each(Object.keys(chains))('%s executor', async (kind) => {
    await h.apply(chains[kind]);
    const runId = await h.trigger(kind === 'process' ? 'chain-process' : 'chain-run');
    // One cycle per tick; the pause lets a process task exit before the next cycle checks it.
    let ended: TickSummary | undefined;
    let tasks = await timestamps(h, runId);
    for (let i = 0; i < 40 && !ended; i++) {
      const summary = await tick(h.deps, { budgetMs: 0 });
      tasks = await timestamps(h, runId);
      if (tasks.a.status === 'success') ended = summary;
      else await new Promise((r) => setTimeout(r, 100));
    }
    expect(ended).toMatchObject({ cycles: 1, released: 1 });
    expect(tasks.b.status).not.toBe('queued');
    expect(['dispatched', 'running', 'success']).toContain(tasks.b.status);
    expect(ended!.dispatched).toBeGreaterThanOrEqual(1);
    expect(tasks.b.dispatchedAt!.getTime()).toBeGreaterThanOrEqual(tasks.a.finishedAt!.getTime());
    expect((await h.runToEnd(runId)).status).toBe('success');
  });
});
