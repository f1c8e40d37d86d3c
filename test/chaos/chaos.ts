import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { behaviourFromEnv, startCloudRunEmulator, type FaultKind } from '../helpers/cloudRunEmulator';
import { mulberry32 } from '../helpers/emulatorFaults';
import { createTestDatabase } from '../helpers/db';
import { seedWorkload, WORKFLOWS } from './workload';

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

export const FULL: ChaosSize = { tickProcesses: 8, runs: 20, tasksPerRun: 100, kills: 30, dbKills: 2, faultRate: 0.2, timeoutMs: 900_000 };
export const SMALL: ChaosSize = { tickProcesses: 3, runs: 3, tasksPerRun: 20, kills: 4, dbKills: 1, faultRate: 0.2, timeoutMs: 180_000 };

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
    emu.setBehaviour((e) => ({ ...behaviourFromEnv(e), durationMs: Math.floor(random() * 300) }));
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
      TICKRUN_CLAIM_LEASE: '3s',
      TICKRUN_BATCH_SIZE: '40',
      TICKRUN_POOL_SIZE: '3',
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
      (await db.pool.query("select count(*)::int as n from runs where status in ('pending', 'running')")).rows[0].n as number;
    const started = Date.now();
    // Spread the kills over the first part of the run, when there is the most in flight.
    const killEvery = 600;
    let nextKill = Date.now() + killEvery;
    let nextDbKill = Date.now() + 1500;
    while ((await unfinished()) > 0) {
      if (Date.now() - started > size.timeoutMs) throw new Error(`chaos seed=${seed}: runs still unfinished after ${size.timeoutMs} ms`);
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
      await sleep(50);
    }
    stopping = true;
    for (const p of procs) p.kill('SIGKILL');
    emu.setFaults(null);
    return await check(db.pool, emu, runs, { seed, ticks, kills, dbKills });
  } finally {
    stopping = true;
    for (const p of procs) p.kill('SIGKILL');
    await emu.stop();
    await db.drop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

async function check(
  pool: import('pg').Pool,
  emu: Awaited<ReturnType<typeof startCloudRunEmulator>>,
  runs: Map<string, string>,
  counts: { seed: number; ticks: number; kills: number; dbKills: number },
): Promise<ChaosReport> {
  const wrongStatus: string[] = [];
  const wrongAttempts: string[] = [];
  const { rows: runRows } = await pool.query('select id, workflow, status from runs');
  for (const r of runRows) if (r.status !== WORKFLOWS[r.workflow].runStatus) wrongStatus.push(`run ${r.id} (${r.workflow}) ${r.status}`);
  const { rows: tasks } = await pool.query('select t.id, t.name, t.status, t.attempt, r.workflow from tasks t join runs r on r.id = t.run_id');
  const starts = emu.startsByAttempt();
  let duplicates = 0;
  for (const n of starts.values()) if (n > 1) duplicates += n - 1;
  const lost = tasks.filter((t) => !['success', 'failed', 'cancelled', 'skipped'].includes(t.status)).length;
  for (const t of tasks) {
    const want = WORKFLOWS[t.workflow].tasks[t.name];
    // Exactly the attempts the workflow needs were started, each once: none spent on a fault.
    const started = [...Array(want.attempts).keys()].every((i) => starts.get(`${t.id}/${i + 1}`) === 1) && !starts.has(`${t.id}/${want.attempts + 1}`);
    if (t.status !== want.status || t.attempt !== want.attempts || !started) {
      wrongAttempts.push(`${t.workflow}.${t.name} ${t.id}: ${t.status} after ${t.attempt} attempts, want ${want.status} after ${want.attempts}`);
    }
  }
  const deadlocks = await deadlocksSeen(pool);
  const faults = Object.values(emu.injected).reduce((a, b) => a + b, 0);
  const byKind = Object.entries(emu.injected).map(([k, v]) => `${k}:${v}`).join(' ');
  const line =
    `chaos seed=${counts.seed} runs=${runs.size} tasks=${tasks.length} ticks=${counts.ticks} kills=${counts.kills} ` +
    `dbKills=${counts.dbKills} faults=${faults} (${byKind}) duplicates=${duplicates} lost=${lost} deadlocks=${deadlocks} ` +
    `wrongStatus=${wrongStatus.length} wrongAttempts=${wrongAttempts.length}`;
  return { ...counts, faults, duplicates, lost, deadlocks, wrongStatus, wrongAttempts, line };
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
