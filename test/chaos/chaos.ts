import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { behaviourFromEnv, startCloudRunEmulator, type FaultKind } from '../helpers/cloudRunEmulator';
import { mulberry32 } from '../helpers/emulatorFaults';
import { createTestDatabase } from '../helpers/db';
import { UNLIMITED_REGIONS } from '../helpers/harness';
import { sqlList, TERMINAL_TASK_STATUSES, UNFINISHED_RUN_STATUSES } from '../../shared/lifecycle';
import { applyWorkflows } from '../../shared/workflows/apply';
import { parseWorkflow } from '../../shared/workflows/parse';
import { limitedYaml, seedWorkload, WORKFLOWS } from './workload';

/** How hard the chaos run pushes. */
export interface ChaosSize {
  tickProcesses: number;
  runs: number;
  tasksPerRun: number;
  kills: number;
  dbKills: number;
  faultRate: number;
  /** Give up after this long. */
  timeoutMs: number;
}

export const FULL: ChaosSize = { tickProcesses: 8, runs: 28, tasksPerRun: 100, kills: 30, dbKills: 2, faultRate: 0.2, timeoutMs: 900_000 };
export const SMALL: ChaosSize = { tickProcesses: 3, runs: 7, tasksPerRun: 20, kills: 4, dbKills: 1, faultRate: 0.2, timeoutMs: 180_000 };

/** What the chaos run found; `line` is the one-line figure it prints. */
export interface ChaosReport {
  seed: number;
  ticks: number;
  kills: number;
  dbKills: number;
  faults: number;
  duplicates: number;
  lost: number;
  /** Statements Postgres aborted as deadlocked: each one a tick that failed part way. */
  deadlocks: number;
  /** Runs cancelled, and concurrency limits changed, by the driver while they ran. */
  cancels: number;
  limitChanges: number;
  /** Executions of a cancelled run created later than one claim lease after its cancel ended. */
  lateStarts: string[];
  wrongStatus: string[];
  wrongAttempts: string[];
  line: string;
}

const CLI = path.resolve(__dirname, '..', '..', 'bin', 'tickrun.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the workload with `size.tickProcesses` tick processes at once, SIGKILLs some of them at random
 * moments, terminates database backends in the middle of statements, and makes a share of Cloud Run
 * calls fail in every way the emulator knows; then checks that every run ended as it must, that no
 * (task, attempt) was started twice, that no task was left unfinished and that no attempt was spent on
 * a fault.
 */
export async function runChaos(size: ChaosSize, seed: number): Promise<ChaosReport> {
  // The same seed gives the same kill, fault and duration choices (the timing of the processes aside).
  const random = mulberry32(seed);
  const db = await createTestDatabase();
  const emu = await startCloudRunEmulator();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-chaos-'));
  const procs = new Set<ChildProcess>();
  let ticks = 0;
  let kills = 0;
  let dbKills = 0;
  // Set on every way out, so that tick processes ending then are not replaced.
  let stopping = false;
  try {
    // CHAOS_SLOW_UNTIL=N: attempts before N run for a minute (past a timeout, or until cancelled).
    const slow = (env: Record<string, string>) => Number(env.TICKRUN_ATTEMPT) < Number(env.CHAOS_SLOW_UNTIL ?? 0);
    emu.setBehaviour((e) => ({ ...behaviourFromEnv(e), durationMs: slow(e.env) ? 60_000 : Math.floor(random() * 300) }));
    const runs = await seedWorkload(db.pool, size.runs, size.tasksPerRun);
    const kinds: FaultKind[] = ['429', '500', '503', 'delay', 'reset', 'lost'];
    emu.setFaults({ rate: size.faultRate, kinds, delayMs: 800, seed });
    const env = {
      PATH: process.env.PATH!,
      DATABASE_URL: db.url,
      CLOUD_RUN_EMULATOR_HOST: emu.host,
      TICKRUN_HOME: home,
      TICKRUN_POLL_INTERVAL: '200ms',
      TICKRUN_API_TIMEOUT: '500ms',
      TICKRUN_CLAIM_LEASE: '3s', // leaseMs below
      TICKRUN_BATCH_SIZE: '40',
      TICKRUN_POOL_SIZE: '3',
      ...UNLIMITED_REGIONS,
    };
    const spawnTick = () => {
      const p = spawn(process.execPath, [CLI, 'tick', '--budget', `${2 + Math.floor(random() * 3)}s`], { env, stdio: 'ignore' });
      procs.add(p);
      ticks++;
      p.on('exit', () => {
        procs.delete(p);
        if (!stopping) spawnTick();
      });
    };
    for (let i = 0; i < size.tickProcesses; i++) spawnTick();

    const unfinished = async () =>
      (await db.pool.query(`select count(*)::int as n from runs where status in ${sqlList(UNFINISHED_RUN_STATUSES)}`)).rows[0].n as number;
    const disturbances = planDisturbances(runs, random);
    const cancelled = new Map<string, number>();
    let limitChanges = 0;
    const started = Date.now();
    // Spread the kills over the first part of the run, when there is the most in flight.
    const killEvery = 600;
    let nextKill = Date.now() + killEvery;
    let nextDbKill = Date.now() + 1500;
    while ((await unfinished()) > 0) {
      if (Date.now() - started > size.timeoutMs) {
        const { rows } = await db.pool.query(
          `select r.workflow, t.name, t.status, count(*)::int as n from runs r join tasks t on t.run_id = r.id
           where r.status in ${sqlList(UNFINISHED_RUN_STATUSES)} group by 1, 2, 3 order by 1, 2, 3`,
        );
        const left = rows.map((r) => `${r.workflow}.${r.name} ${r.status} ${r.n}`).join(', ');
        throw new Error(`chaos seed=${seed}: runs still unfinished after ${size.timeoutMs} ms: ${left}`);
      }
      if (kills < size.kills && Date.now() >= nextKill && procs.size > 0) {
        const victims = [...procs];
        victims[Math.floor(random() * victims.length)].kill('SIGKILL');
        kills++;
        nextKill = Date.now() + killEvery * (0.5 + random());
      }
      if (dbKills < size.dbKills && Date.now() >= nextDbKill) {
        const { rows } = await db.pool.query(
          "select pg_terminate_backend(pid) as done from pg_stat_activity where application_name = 'tickrun' and state = 'active' and datname = current_database() limit 1",
        );
        if (rows[0]?.done) {
          dbKills++;
          nextDbKill = Date.now() + 3000;
        }
      }
      for (const d of disturbances.filter((d) => !d.done && Date.now() - started >= d.atMs)) {
        d.done = true;
        if (d.runId) {
          // An operator's `tickrun cancel`, as its own process; the guarantee is counted from its end.
          await runCli(['cancel', d.runId], env);
          cancelled.set(d.runId, Date.now());
        } else {
          await applyWorkflows(db.pool, [parseWorkflow(limitedYaml(size.tasksPerRun, d.concurrency!), '/chaos/chaos-limited.yaml')]);
          limitChanges++;
        }
      }
      await sleep(50);
    }
    stopping = true;
    for (const p of procs) p.kill('SIGKILL');
    emu.setFaults(null);
    const leaseMs = 3000;
    return await check(db.pool, emu, runs, cancelled, leaseMs, { seed, ticks, kills, dbKills, limitChanges });
  } finally {
    stopping = true;
    for (const p of procs) p.kill('SIGKILL');
    await emu.stop();
    await db.drop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/** Something the driver does at `atMs` into the run: cancel a run, or set chaos-limited's limit. */
interface Disturbance {
  atMs: number;
  runId?: string;
  concurrency?: number | null;
  done?: boolean;
}

/** Each chaos-cancelled run is cancelled 1 to 3 s in; chaos-limited's limit goes from 3 to 8, then away. */
function planDisturbances(runs: Map<string, string>, random: () => number): Disturbance[] {
  const plan: Disturbance[] = [{ atMs: 1000, concurrency: 8 }, { atMs: 2500, concurrency: null }];
  for (const [runId, workflow] of runs) {
    if (WORKFLOWS[workflow].disturb === 'cancel') plan.push({ atMs: 1000 + Math.floor(random() * 2000), runId });
  }
  return plan;
}

/** Runs the CLI to its end; throws with its stderr when it fails. */
function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr!.on('data', (d) => (stderr += d));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tickrun ${args.join(' ')} exited ${code}: ${stderr}`))));
  });
}

async function check(
  pool: import('pg').Pool,
  emu: Awaited<ReturnType<typeof startCloudRunEmulator>>,
  runs: Map<string, string>,
  cancelled: Map<string, number>,
  leaseMs: number,
  counts: { seed: number; ticks: number; kills: number; dbKills: number; limitChanges: number },
): Promise<ChaosReport> {
  const wrongStatus: string[] = [];
  const wrongAttempts: string[] = [];
  const { rows: runRows } = await pool.query('select id, workflow, status from runs');
  for (const r of runRows) if (r.status !== WORKFLOWS[r.workflow].runStatus) wrongStatus.push(`run ${r.id} (${r.workflow}) ${r.status}`);
  const { rows: tasks } = await pool.query('select t.id, t.run_id, t.name, t.task_index, t.array_task, t.status, t.attempt, r.workflow from tasks t join runs r on r.id = t.run_id');
  // Starts per task attempt, and per logical task attempt of an array task (each index of each execution).
  const byTask = emu.startsByAttempt();
  const byIndex = emu.startsByIndex();
  let duplicates = 0;
  for (const [key, n] of byTask) if (n > 1 && !key.startsWith('undefined/')) duplicates += n - 1;
  for (const n of byIndex.values()) if (n > 1) duplicates += n - 1;
  const lost = tasks.filter((t) => !(TERMINAL_TASK_STATUSES as string[]).includes(t.status)).length;
  for (const t of tasks) {
    const want = WORKFLOWS[t.workflow].tasks[t.name];
    // Exactly the attempts the workflow needs were started, each once: none spent on a fault. A task of a
    // run cancelled mid-way took at most one attempt, whose claim may have ended with the cancel unsent.
    const attempts = want.attempts === 'sent or not' ? Math.min(t.attempt, 1) : want.attempts + (want.retriedIndexes?.includes(t.task_index) ? 1 : 0);
    const starts = (i: number) => (t.array_task ? byIndex.get(`${t.run_id}/${t.name}/${t.task_index}/${i}`) : byTask.get(`${t.id}/${i}`));
    const once = (i: number) => (want.attempts === 'sent or not' ? (starts(i) ?? 0) <= 1 : starts(i) === 1);
    const started = [...Array(attempts).keys()].every((i) => once(i + 1)) && starts(attempts + 1) === undefined;
    if (t.status !== want.status || t.attempt !== attempts || !started) {
      wrongAttempts.push(`${t.workflow}.${t.name} ${t.id}: ${t.status} after ${t.attempt} attempts, want ${want.status} after ${attempts}`);
    }
  }
  // A claim taken before the cancel may still be sent within its lease; nothing of the run starts later.
  const lateStarts = emu.executions
    .filter((e) => cancelled.has(e.env.TICKRUN_RUN_ID) && e.createdAt > cancelled.get(e.env.TICKRUN_RUN_ID)! + leaseMs)
    .map((e) => `${e.name} of cancelled run ${e.env.TICKRUN_RUN_ID}, ${e.createdAt - cancelled.get(e.env.TICKRUN_RUN_ID)!} ms after its cancel`);
  const deadlocks = await deadlocksSeen(pool);
  const faults = Object.values(emu.injected).reduce((a, b) => a + b, 0);
  const byKind = Object.entries(emu.injected).map(([k, v]) => `${k}:${v}`).join(' ');
  const line =
    `chaos seed=${counts.seed} runs=${runs.size} tasks=${tasks.length} ticks=${counts.ticks} kills=${counts.kills} ` +
    `dbKills=${counts.dbKills} faults=${faults} (${byKind}) duplicates=${duplicates} lost=${lost} deadlocks=${deadlocks} ` +
    `cancels=${cancelled.size} limitChanges=${counts.limitChanges} lateStarts=${lateStarts.length} ` +
    `wrongStatus=${wrongStatus.length} wrongAttempts=${wrongAttempts.length}`;
  return { ...counts, cancels: cancelled.size, faults, duplicates, lost, deadlocks, lateStarts, wrongStatus, wrongAttempts, line };
}

/**
 * Deadlocks Postgres detected in this database. The tick processes ran with their output ignored, and a
 * tick that fails is retried by the next one, so a deadlock shows nowhere else. A backend reports its
 * count when it ends: this waits for the killed processes' backends to go first.
 */
async function deadlocksSeen(pool: import('pg').Pool): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const { rows } = await pool.query("select count(*)::int as n from pg_stat_activity where application_name = 'tickrun' and datname = current_database()");
    if (rows[0].n === 0) break;
    await sleep(50);
  }
  const { rows } = await pool.query('select deadlocks::int as n from pg_stat_database where datname = current_database()');
  return rows[0].n;
}
