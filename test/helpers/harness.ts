import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig, type Config } from '../../shared/config';
import type { TickContext } from '../../shared/context';
import { countingDb } from '../../shared/db';
import { createExecutors } from '../../shared/executors';
import { setLogSink } from '../../shared/log';
import { getRun, type Run } from '../../shared/model/runs';
import { listTasks } from '../../shared/model/tasks';
import { triggerRun } from '../../shared/operator/trigger';
import { tick, type TickDeps } from '../../shared/tick';
import { applyWorkflows } from '../../shared/workflows/apply';
import { parseWorkflow } from '../../shared/workflows/parse';
import type { TickSummary } from '../../shared/cycle';
import { startCloudRunEmulator, type CloudRunEmulator } from './cloudRunEmulator';
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
  runToEnd(runId: string, opts?: { maxTicks?: number; pauseMs?: number }): Promise<Run & { ticks: TickSummary[] }>;
  tasks(runId: string): ReturnType<typeof listTasks>;
  /** A step context as a tick builds it, over this harness's pool; `overrides` replace its db or clock. */
  context(overrides?: Partial<Pick<TickContext, 'db' | 'clock'>>): TickContext;
  close(): Promise<void>;
}

/**
 * Region limits no test reaches unless it sets its own: the emulator enforces none by default, and a test
 * of something else should not wait on tickrun's run budget (test/integration/regions*.test.ts test it).
 */
export const UNLIMITED_REGIONS = { TICKRUN_RUN_REQUESTS_PER_MINUTE: '1000000', TICKRUN_READ_REQUESTS_PER_MINUTE: '1000000', TICKRUN_MAX_RUNNING_EXECUTIONS: '10000' } as const;

/** Builds a harness; `env` adds to or overrides the test configuration. */
export async function createHarness(env: Record<string, string> = {}): Promise<Harness> {
  setLogSink(null);
  const db = await createTestDatabase();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-home-'));
  const config = parseConfig({ DATABASE_URL: db.url, TICKRUN_HOME: home, TICKRUN_API_TIMEOUT: '3s', ...UNLIMITED_REGIONS, ...env });
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
    context: (overrides = {}) => ({ config, db: countingDb(db.pool), executors: deps.executors, clock: () => new Date(), ...overrides }),
    async close() {
      await db.drop();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * For the enclosing describe: a Cloud Run emulator and a harness on it (`env` added to its configuration),
 * started before the describe's tests and stopped after them. `use` receives both once they are up.
 */
export function emulatorHarness(use: (started: { emu: CloudRunEmulator; h: Harness }) => void, env: Record<string, string> = {}): void {
  let started: { emu: CloudRunEmulator; h: Harness } | undefined;
  beforeAll(async () => {
    const emu = await startCloudRunEmulator();
    started = { emu, h: await createHarness({ CLOUD_RUN_EMULATOR_HOST: emu.host, ...env }) };
    use(started);
  });
  afterAll(async () => {
    await started?.h.close();
    await started?.emu.stop();
  });
}
