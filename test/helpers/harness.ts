import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig, type Config } from '../../shared/config';
import { createExecutors } from '../../shared/executors';
import { setLogSink } from '../../shared/log';
import { getRun, listTasks, triggerRun, type RunView } from '../../shared/runs';
import { tick, type TickDeps } from '../../shared/tick';
import { applyWorkflows } from '../../shared/workflows/apply';
import { parseWorkflow } from '../../shared/workflows/parse';
import type { TickSummary } from '../../shared/cycle';
import { createTestDatabase, type TestDatabase } from './db';

/** A database of its own, a tickrun home of its own, and the tick's dependencies built on them. */
export interface Harness {
  db: TestDatabase;
  home: string;
  config: Config;
  deps: TickDeps;
  /** Parses a workflow file's text (as if in `dir`) and applies it. */
  apply(yaml: string, dir?: string): Promise<void>;
  trigger(workflow: string, params?: Record<string, string>): Promise<string>;
  /** Ticks until the run has ended (or maxTicks), sleeping `pauseMs` between ticks; returns the run. */
  runToEnd(runId: string, opts?: { maxTicks?: number; pauseMs?: number }): Promise<RunView & { ticks: TickSummary[] }>;
  tasks(runId: string): ReturnType<typeof listTasks>;
  close(): Promise<void>;
}

/** Builds a harness; `env` adds to or overrides the test configuration. */
export async function createHarness(env: Record<string, string> = {}): Promise<Harness> {
  setLogSink(null);
  const db = await createTestDatabase();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-home-'));
  const config = parseConfig({ DATABASE_URL: db.url, TICKRUN_HOME: home, TICKRUN_API_TIMEOUT: '5s', ...env });
  const deps: TickDeps = { config, pool: db.pool, executors: createExecutors(config) };
  return {
    db,
    home,
    config,
    deps,
    async apply(yaml, dir = home) {
      await applyWorkflows(db.pool, [parseWorkflow(yaml, path.join(dir, 'workflow.yaml'))]);
    },
    async trigger(workflow, params) {
      return (await triggerRun(db.pool, workflow, { params })).runId;
    },
    async runToEnd(runId, { maxTicks = 200, pauseMs = 20 } = {}) {
      const ticks: TickSummary[] = [];
      for (let i = 0; i < maxTicks; i++) {
        ticks.push(await tick(deps, { budgetMs: 0 }));
        const run = await getRun(db.pool, runId);
        if (['success', 'failed', 'cancelled'].includes(run.status)) return { ...run, ticks };
        await new Promise((r) => setTimeout(r, pauseMs));
      }
      throw new Error(`run ${runId} did not end within ${maxTicks} ticks: ${JSON.stringify(await listTasks(db.pool, runId))}`);
    },
    tasks: (runId) => listTasks(db.pool, runId),
    async close() {
      await db.drop();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}
