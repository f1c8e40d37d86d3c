import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pool } from 'pg';
import { behaviourFromEnv, startCloudRunEmulator, type CloudRunEmulator, type FaultKind, type FaultPlan } from '../helpers/cloudRunEmulator';
import { mulberry32 } from '../helpers/emulatorFaults';
import { UNLIMITED_REGIONS } from '../helpers/harness';
import { sqlList, TERMINAL_TASK_STATUSES, UNFINISHED_RUN_STATUSES } from '../../shared/lifecycle';
import { triggerRun } from '../../shared/operator/trigger';
import { applyWorkflows } from '../../shared/workflows/apply';
import { parseWorkflow } from '../../shared/workflows/parse';

/** The recovery workload: `runs` runs of a fan-out of `fanOut` tasks followed by another of `fanOut`. */
export interface RecoverySize {
  runs: number;
  fanOut: number;
  tickProcesses: number;
  /** Each phase (clean, faulty) gives up after this long. */
  timeoutMs: number;
  /**
   * The faulty phase also gives up once it has taken this many times the clean one (plus 5 s): the
   * ratio already failed, and the rest would only measure by how much.
   */
  giveUpPastRatio?: number;
  /**
   * Most ticks killed in the faulty phase. A kill costs a lease (8 s) whatever the workload's size, so at
   * the small size, whose clean run is two poll cycles, each kill past the first weighs as much as every
   * other fault together and the ratio would measure where the kills fell rather than recovery.
   */
  maxKills?: number;
}

/** Issue 15's bad day: 20 runs of 50 → 50 (2,000 tasks), 6 tick loops. */
export const FULL: RecoverySize = { runs: 20, fanOut: 50, tickProcesses: 6, timeoutMs: 600_000 };
// 8 runs of 20 → 20: since a DAG layer costs one cycle, 4 runs of 10 → 10 ended in 5.9 s without faults, and
// one killed tick's lease (8 s) alone then made a ratio of 3.42 (seed 1096398786); at this size the clean run
// takes about 10 s and the same seed 2.12.
export const SMALL: RecoverySize = { runs: 8, fanOut: 20, tickProcesses: 3, timeoutMs: 120_000, giveUpPastRatio: 3, maxKills: 1 };

/**
 * Each tick process runs `tick --budget 20s` and is replaced when it ends, as Cloud Scheduler invokes a
 * tick every minute with a budget of most of it. 20 s, less than the ~21 s the full workload takes
 * without faults, so that both phases go through tick generations (a new process, its first connection
 * and cycle) and the faulty phase through many; a minute's budget would leave the clean phase one.
 */
const TICK_BUDGET = '20s';
/**
 * The faulty phase SIGKILLs a random tick process 2 to 5 s in, while the first fan-out is in flight, then
 * every 7.5 to 22.5 s (one every 15 s on average: the issue's bad day killed 20 ticks in 300 s); each is
 * replaced at once.
 */
const FIRST_KILL_MS = [2_000, 5_000];
const KILL_EVERY_MS = 15_000;
/** Every RPC of the Cloud Run Admin API the emulator serves. */
const EVERY_RPC = ['runJob', 'getJob', 'getExecution', 'listExecutions', 'cancelExecution', 'getOperation'];

/** 10% of every call refused, failed, reset or hung past its deadline, and 5% of runJob answers lost after the execution was created. */
export function recoveryFaults(seed: number): FaultPlan[] {
  return [
    { rate: 0.1, kinds: ['429', '503', '500', 'reset', 'hang'], rpcs: EVERY_RPC, seed },
    { rate: 0.05, kinds: ['lost'], rpcs: ['runJob'], seed: (seed * 31 + 7) >>> 0 },
  ];
}

/** Where a phase runs: a fresh migrated database each time, and the CLI to run ticks with. */
export interface RecoverySetup {
  freshDatabase(): Promise<{ url: string; pool: Pool; drop(): Promise<void> }>;
  cli: string;
}

/** One phase, from the trigger to every run ended, or given up. */
export interface Phase {
  /** From the first run created to the last one ended (database clock); undefined when given up. */
  ms?: number;
  /** When given up: how many runs ended, and the statuses of the tasks left (then `lost` counts them unfinished). */
  leftOver?: string;
  /** How long it ran before it gave up (or would have). */
  timeoutMs: number;
  duplicates: number;
  lost: number;
  /** Tasks that did not end `success` after exactly one attempt, started once. */
  wrong: string[];
  ticks: number;
  /** Tick processes that exited with an error (not killed). */
  tickErrors: number;
  kills: number;
  injected: Partial<Record<FaultKind, number>>;
}

export interface RecoveryReport {
  seed: number;
  clean: Phase;
  faulty: Phase;
  /** faulty / clean, when both finished. */
  ratio?: number;
  line: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
/** Unfinished tasks of a phase given up are not yet lost: how many there were, not a verdict. */
const lostText = (p: Phase) => (p.leftOver ? `?(${p.lost} unfinished)` : String(p.lost));

/** The workload without faults, then with them, each on a fresh database and emulator. */
export async function runRecovery(size: RecoverySize, seed: number, setup: RecoverySetup): Promise<RecoveryReport> {
  const clean = await runPhase(size, seed, setup, size.timeoutMs, false);
  const giveUp = clean.ms !== undefined && size.giveUpPastRatio ? Math.min(size.timeoutMs, size.giveUpPastRatio * clean.ms + 5_000) : size.timeoutMs;
  const faulty = await runPhase(size, seed, setup, giveUp, true);
  const ratio = clean.ms !== undefined && faulty.ms !== undefined ? faulty.ms / clean.ms : undefined;
  const time = (p: Phase) => (p.ms !== undefined ? seconds(p.ms) : `>${seconds(p.timeoutMs)}`);
  // A faulty phase given up after a clean one finished took more than its timeout / clean.
  const ratioText = ratio !== undefined ? ratio.toFixed(2) : clean.ms !== undefined ? `>${(faulty.timeoutMs / clean.ms).toFixed(1)}` : '?';
  const faults = Object.entries(faulty.injected).filter(([, n]) => n! > 0);
  const line =
    `recovery seed=${seed} clean=${time(clean)} faulty=${time(faulty)} ratio=${ratioText} ` +
    `duplicates=${clean.duplicates + faulty.duplicates} lost=${lostText(clean)}+${lostText(faulty)} kills=${faulty.kills} ` +
    `faults=${faults.reduce((n, [, k]) => n + k!, 0)} (${faults.map(([kind, n]) => `${kind}:${n}`).join(' ')}) ` +
    `ticks=${clean.ticks}+${faulty.ticks} tickErrors=${clean.tickErrors + faulty.tickErrors} wrong=${clean.wrong.length + faulty.wrong.length}` +
    [clean, faulty].map((p, i) => (p.leftOver ? `; ${i ? 'faulty' : 'clean'} run given up: ${p.leftOver}` : '')).join('');
  return { seed, clean, faulty, ratio, line };
}

function workflowYaml(fanOut: number): string {
  const job = 'projects/recovery/locations/us-central1/jobs';
  return `name: two-step
tasks:
  a: { job: ${job}/a, count: ${fanOut} }
  b: { job: ${job}/b, count: ${fanOut}, depends_on: [a] }
`;
}

async function runPhase(size: RecoverySize, seed: number, setup: RecoverySetup, timeoutMs: number, faulty: boolean): Promise<Phase> {
  const random = mulberry32(seed);
  const db = await setup.freshDatabase();
  const emu = await startCloudRunEmulator();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-recovery-'));
  const procs = new Set<ChildProcess>();
  const counts = { ticks: 0, tickErrors: 0, kills: 0 };
  let stopping = false;
  try {
    emu.setBehaviour((e) => ({ ...behaviourFromEnv(e), durationMs: Math.floor(random() * 300) }));
    if (faulty) emu.setFaults(recoveryFaults(seed));
    await applyWorkflows(db.pool, [parseWorkflow(workflowYaml(size.fanOut), '/recovery/two-step.yaml')]);
    // Every tickrun setting at its default: what a new user gets.
    const env = { PATH: process.env.PATH!, DATABASE_URL: db.url, CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_HOME: home, ...UNLIMITED_REGIONS };
    const spawnTick = () => {
      const p = spawn(process.execPath, [setup.cli, 'tick', '--budget', TICK_BUDGET], { env, stdio: 'ignore' });
      procs.add(p);
      counts.ticks++;
      p.on('exit', (code, signal) => {
        procs.delete(p);
        if (code !== 0 && signal === null) counts.tickErrors++;
        if (!stopping) spawnTick();
      });
    };
    await Promise.all(Array.from({ length: size.runs }, () => triggerRun(db.pool, 'two-step')));
    const started = Date.now();
    for (let i = 0; i < size.tickProcesses; i++) spawnTick();

    let nextKill = started + FIRST_KILL_MS[0] + random() * (FIRST_KILL_MS[1] - FIRST_KILL_MS[0]);
    let leftOver: string | undefined;
    let lastTrace = 0;
    while ((await unfinishedRuns(db.pool)) > 0) {
      if (Date.now() - started > timeoutMs) {
        leftOver = await describeLeftOver(db.pool, size.runs);
        break;
      }
      if (faulty && Date.now() >= nextKill && procs.size > 0 && counts.kills < (size.maxKills ?? Infinity)) {
        const victims = [...procs];
        victims[Math.floor(random() * victims.length)].kill('SIGKILL');
        counts.kills++;
        nextKill = Date.now() + KILL_EVERY_MS * (0.5 + random());
      }
      if (process.env.RECOVERY_TRACE && Date.now() - lastTrace >= 2000) {
        lastTrace = Date.now();
        const { rows } = await db.pool.query(
          `select name, status, count(*)::int n, left(max(coalesce(error, '')), 50) e from tasks where status not in ('success', 'waiting') group by 1, 2 order by 1, 2`,
        );
        process.stderr.write(`${faulty ? 'faulty' : 'clean'} ${Math.round((Date.now() - started) / 1000)}s ${rows.map((r) => `${r.name}.${r.status}:${r.n}${r.e ? `(${r.e})` : ''}`).join(' ')}\n`);
        const { rows: claims } = await db.pool.query(
          `select left(coalesce(error, ''), 90) e, round(extract(epoch from lease_until - now())::numeric, 1) lease, round(extract(epoch from now() - claimed_at)::numeric, 1) age, count(*)::int n
           from tasks where status = 'claimed' group by 1, 2, 3 order by 4 desc limit 6`,
        );
        for (const c of claims) process.stderr.write(`   claimed ${c.n}: lease ${c.lease}s age ${c.age}s ${c.e}\n`);
      }
      await sleep(100);
    }
    stopping = true;
    for (const p of procs) p.kill('SIGKILL');
    emu.setFaults(null);
    const { rows } = await db.pool.query('select extract(epoch from max(finished_at) - min(created_at)) * 1000 as ms from runs');
    return { ...(await check(db.pool, emu)), ...counts, ms: leftOver ? undefined : Number(rows[0].ms), leftOver, timeoutMs, injected: { ...emu.injected } };
  } finally {
    stopping = true;
    for (const p of procs) p.kill('SIGKILL');
    await emu.stop();
    await db.drop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

async function unfinishedRuns(pool: Pool): Promise<number> {
  const { rows } = await pool.query(`select count(*)::int as n from runs where status in ${sqlList(UNFINISHED_RUN_STATUSES)}`);
  return rows[0].n;
}

/** "3/20 runs ended; tasks of the others: a success 950, b queued 50, …" */
async function describeLeftOver(pool: Pool, runs: number): Promise<string> {
  const unfinished = await unfinishedRuns(pool);
  const { rows } = await pool.query(
    `select t.name, t.status, count(*)::int as n from runs r join tasks t on t.run_id = r.id
     where r.status in ${sqlList(UNFINISHED_RUN_STATUSES)} group by 1, 2 order by 1, 2`,
  );
  return `${runs - unfinished}/${runs} runs ended; tasks of the others: ${rows.map((r) => `${r.name} ${r.status} ${r.n}`).join(', ')}`;
}

/** Every run and task ended `success`, each task after one attempt started exactly once: no fault spent an attempt. */
async function check(pool: Pool, emu: CloudRunEmulator): Promise<Pick<Phase, 'duplicates' | 'lost' | 'wrong'>> {
  const starts = emu.startsByAttempt();
  let duplicates = 0;
  for (const n of starts.values()) if (n > 1) duplicates += n - 1;
  const { rows: runs } = await pool.query("select id, status from runs where status <> 'success'");
  const { rows: tasks } = await pool.query('select id, name, task_index, status, attempt from tasks');
  const lost = tasks.filter((t) => !(TERMINAL_TASK_STATUSES as string[]).includes(t.status)).length;
  const wrong = [
    ...runs.filter((r) => !(UNFINISHED_RUN_STATUSES as readonly string[]).includes(r.status)).map((r) => `run ${r.id} ${r.status}`),
    ...tasks
      .filter((t) => (TERMINAL_TASK_STATUSES as string[]).includes(t.status))
      .filter((t) => t.status !== 'success' || t.attempt !== 1 || starts.get(`${t.id}/1`) !== 1 || starts.has(`${t.id}/2`))
      .map((t) => `${t.name}[${t.task_index}] ${t.id}: ${t.status} after ${t.attempt} attempt(s), attempt 1 started ${starts.get(`${t.id}/1`) ?? 0} time(s)`),
  ];
  return { duplicates, lost, wrong };
}
