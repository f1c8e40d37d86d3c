import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { executionEnv, statusEach, type DispatchRequest, type ExecutionStatus, type Executor } from './executor';

// The wrapper shell runs the command with its output appended to the attempt's log, then writes the
// exit code beside it (renamed into place, so a reader never sees half a number). It is detached: the
// tick that started it may end, and a later tick in another process reads the outcome from the files.
// Its no-op TERM trap keeps it waiting for a command that outlives a SIGTERM, so while the group leader
// lives the command may still run (the command itself gets the default TERM, traps do not pass to it).
const WRAPPER = 'dir=$1; shift; trap : TERM; "$@" >>"$dir/output.log" 2>&1 </dev/null; echo $? >"$dir/exit.tmp"; mv "$dir/exit.tmp" "$dir/exit"';

// Sent with a cancel, detached as the task is: after the grace, SIGKILL to the task's process group if
// any of it is left, so the kill happens though no tick ever asks about the attempt again.
const GRACE_KILLER = 'sleep "$1"; kill -KILL "-$2" 2>/dev/null';

/**
 * How long a cancelled task has between SIGTERM and SIGKILL of its process group: 10 s, as Cloud Run
 * gives a container it shuts down (https://cloud.google.com/run/docs/container-contract#lifecycle), so
 * a task cleans up alike on both executors, and one that ignores SIGTERM still ends.
 */
export const KILL_GRACE_MS = 10_000;

/** Options of the process executor: `killGraceMs` (default KILL_GRACE_MS) is the SIGTERM-to-SIGKILL grace. */
export interface ProcessExecutorOptions {
  killGraceMs?: number;
}

/** Execution names are `process:executions/<task id>/<attempt>`, a folder under the tickrun home. */
const PREFIX = 'process:';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The last lines of an attempt's output, to explain a failure. */
function tail(file: string, lines = 5): string {
  const text = readText(file)?.trimEnd();
  return text ? text.split('\n').slice(-lines).join('\n') : '';
}

/**
 * The variables of the machine's environment a task is given: what a command needs to find programs,
 * its home, its user, its locale, its time zone and its temporary folder. Nothing else passes: the
 * tick's environment holds database passwords (PG*, DATABASE_URL), credentials (GOOGLE_APPLICATION_CREDENTIALS)
 * and its own Node options (NODE_*), none of them the task's. A task that needs more sets it in `env`.
 */
const PASSED_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR', 'TERM'] as const;

/** Prefixes of variables passed too: the locale's categories (LC_ALL, LC_TIME…). */
const PASSED_ENV_PREFIXES = ['LC_'] as const;

/** The allow-listed part of an environment (PASSED_ENV, PASSED_ENV_PREFIXES). */
function passedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const passed = (k: string) => (PASSED_ENV as readonly string[]).includes(k) || PASSED_ENV_PREFIXES.some((p) => k.startsWith(p));
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => passed(e[0]) && e[1] !== undefined));
}

/** Sends `signal` to a process group; a group already gone is no error. */
function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/**
 * Runs `process` tasks on this machine, each attempt in its own folder under `<home>/executions`. A cancel
 * sends SIGTERM to the attempt's process group, then SIGKILL after `killGraceMs`.
 */
export function createProcessExecutor(home: string, { killGraceMs = KILL_GRACE_MS }: ProcessExecutorOptions = {}): Executor {
  if (!Number.isInteger(killGraceMs) || killGraceMs < 0) throw new Error(`killGraceMs must be a whole number of milliseconds, 0 or more; got ${killGraceMs}`);
  const folder = (name: string) => {
    if (!name.startsWith(PREFIX)) throw new Error(`not a process execution: ${name}`);
    return path.join(home, name.slice(PREFIX.length));
  };
  const executor: Executor = {
    async dispatch(req: DispatchRequest) {
      const command = req.spec.command;
      if (!command?.length) throw new Error(`task ${req.taskName} has no command`);
      const rel = path.join('executions', req.taskId, String(req.attempt));
      const dir = path.join(home, rel);
      // A folder already there means this attempt was started before: refuse to start it twice.
      fs.mkdirSync(path.dirname(dir), { recursive: true });
      fs.mkdirSync(dir);
      const child = spawn('/bin/sh', ['-c', WRAPPER, 'tickrun-task', dir, ...command], {
        cwd: req.workflowDir,
        env: { ...passedEnv(process.env), ...executionEnv(req) },
        detached: true,
        stdio: 'ignore',
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      fs.writeFileSync(path.join(dir, 'pid'), String(child.pid));
      child.unref();
      return PREFIX + rel;
    },

    async status(name: string): Promise<ExecutionStatus> {
      const dir = folder(name);
      if (!fs.existsSync(dir)) return { state: 'failed', error: `execution ${name} no longer exists` };
      const exit = () => readText(path.join(dir, 'exit'));
      let code = exit();
      if (code === undefined) {
        const pid = Number(readText(path.join(dir, 'pid')));
        if (pid && isAlive(pid)) {
          killPastGrace(dir, pid);
          return { state: 'running' };
        }
        code = exit(); // it may have ended between the two reads
      }
      // Cancelled: the code is that of a command stopped by our signal, or none when SIGKILL took the wrapper too.
      if (fs.existsSync(path.join(dir, 'cancelled'))) return { state: 'cancelled' };
      if (code === undefined) {
        return { state: 'failed', error: `process ended without an exit code (killed?); log: ${path.join(dir, 'output.log')}` };
      }
      if (Number(code) === 0) return { state: 'success' };
      const last = tail(path.join(dir, 'output.log'));
      return { state: 'failed', error: `exited with code ${Number(code)}${last ? `: ${last}` : ''}` };
    },

    // Reading a few files costs no API call: there is nothing to batch.
    statusMany: (names, concurrency, endBy, onRead) => statusEach(names, executor.status, concurrency, endBy, onRead),

    async findStarted(lost) {
      // An attempt's folder is made before its process starts: no folder, never started.
      return new Map(
        lost.map((l) => {
          const rel = path.join('executions', l.taskId, String(l.attempt));
          return [l, fs.existsSync(path.join(home, rel)) ? PREFIX + rel : null];
        }),
      );
    },

    // The cancelled file holds when SIGTERM was sent: a cancel (or a status read) past the grace, from
    // any tick, sends SIGKILL, should the detached killer not have done it.
    async cancel(name: string) {
      const dir = folder(name);
      const pid = Number(readText(path.join(dir, 'pid')));
      if (!pid || readText(path.join(dir, 'exit')) !== undefined) return;
      if (termSentAt(dir) !== undefined) return killPastGrace(dir, pid);
      fs.writeFileSync(path.join(dir, 'cancelled'), new Date().toISOString());
      signalGroup(pid, 'SIGTERM'); // the whole process group: the wrapper and the command
      const killer = spawn('/bin/sh', ['-c', GRACE_KILLER, 'tickrun-grace', String(killGraceMs / 1000), String(pid)], { detached: true, stdio: 'ignore' });
      await new Promise<void>((resolve, reject) => {
        killer.once('spawn', resolve);
        killer.once('error', reject);
      });
      killer.unref();
    },
  };

  /** When SIGTERM was sent to an attempt, from its cancelled file; undefined when it never was. */
  function termSentAt(dir: string): number | undefined {
    const text = readText(path.join(dir, 'cancelled'));
    return text === undefined ? undefined : Date.parse(text);
  }

  /** SIGKILL to an attempt's process group once the grace after its SIGTERM has passed. */
  function killPastGrace(dir: string, pid: number): void {
    const sentAt = termSentAt(dir);
    if (sentAt !== undefined && !(Date.now() - sentAt < killGraceMs)) signalGroup(pid, 'SIGKILL');
  }
  return executor;
}
