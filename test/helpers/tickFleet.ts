import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** The CLI from a test (a bundle, like the bench's, passes its own `cli`). */
const CLI = path.resolve(__dirname, '..', '..', 'bin', 'tickrun.js');

/** Ticks running at once as separate processes, as several function instances would. */
export interface TickFleet {
  /** Ticks started so far. */
  readonly started: number;
  /** The last lines a tick wrote on stderr, for a failure's message. */
  readonly lastErrors: string[];
  /** Stops starting ticks and ends the running ones (SIGTERM, then SIGKILL after 5 s). */
  stop(): Promise<void>;
}

/**
 * Keeps `size` ticks (`tickrun tick --budget B`, the CLI of dist/) running at once with `env`: each, when
 * it ends, is replaced at once, as Cloud Scheduler fires again and a new instance takes the next tick.
 */
export function startTickFleet(size: number, env: Record<string, string>, { budget = '20s', cli = CLI }: { budget?: string; cli?: string } = {}): TickFleet {
  const procs = new Set<ChildProcess>();
  const lastErrors: string[] = [];
  let stopping = false;
  let started = 0;
  const startOne = () => {
    const p = spawn(process.execPath, [cli, 'tick', '--budget', budget], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    started++;
    procs.add(p);
    p.stderr!.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (!/"severity":"(ERROR|CRITICAL)"/.test(line) && !(line.trim() && !line.startsWith('{'))) continue;
        lastErrors.push(line.slice(0, 500));
        if (lastErrors.length > 20) lastErrors.shift();
      }
    });
    p.on('exit', () => {
      procs.delete(p);
      if (!stopping) startOne();
    });
  };
  for (let i = 0; i < size; i++) startOne();
  return {
    get started() {
      return started;
    },
    lastErrors,
    async stop() {
      stopping = true;
      const exits = [...procs].map((p) => new Promise<void>((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve() : p.once('exit', () => resolve()))));
      for (const p of procs) p.kill('SIGTERM');
      const killer = setTimeout(() => procs.forEach((p) => p.kill('SIGKILL')), 5000);
      await Promise.all(exits);
      clearTimeout(killer);
    },
  };
}
