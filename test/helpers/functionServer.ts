import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../../shared/localDb';

const ROOT = path.resolve(__dirname, '..', '..');

/** A target of the built bundle served on a port of its own, with everything it printed so far. */
export interface FunctionServer {
  /** http://127.0.0.1:PORT, no trailing slash. */
  origin: string;
  proc: ChildProcess;
  logs: () => string;
  stop: () => void;
}

/**
 * Serves one target of the built bundle (the package's `main`) with the real functions-framework, the way
 * `npx functions-framework --target=TARGET` does in the checkout, and waits until `ready` (a request to
 * the origin) answers.
 */
export async function serveFunction(target: string, env: Record<string, string>, ready: (origin: string) => Promise<unknown>): Promise<FunctionServer> {
  const port = await freePort();
  const bin = path.join(ROOT, 'node_modules', '@google-cloud', 'functions-framework', 'build', 'src', 'main.js');
  const proc = spawn(process.execPath, [bin, `--target=${target}`, `--port=${port}`], { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const origin = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      await ready(origin);
      return { origin, proc, logs: () => out, stop: () => void proc.kill() };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  proc.kill();
  throw new Error(`functions-framework did not start the ${target} target: ${out}`);
}

/** The tick function served on a port of its own, with everything it printed so far. */
export interface TickServer {
  url: string;
  proc: ChildProcess;
  logs: () => string;
}

/** The tick target, answering at `url` (the root). */
export async function serveTick(env: Record<string, string>): Promise<TickServer> {
  const server = await serveFunction('tick', env, (origin) => fetch(`${origin}/`, { method: 'OPTIONS' }));
  return { url: `${server.origin}/`, proc: server.proc, logs: server.logs };
}

/** POSTs to the tick function, with a JSON body when given one; its status and JSON answer. */
export async function post(url: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}
