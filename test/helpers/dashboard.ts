import { startDashboardServer, type DashboardServer } from '../../shared/dashboard/server';
import type { Harness } from './harness';

/** A Cloud Run job's full name in the emulator's demo project. */
export const job = (id: string) => `projects/demo/locations/us-central1/jobs/${id}`;

/** A DAG whose middle task fails its first attempt and succeeds on its retry: extract ×2 → transform → load. */
export function etlWorkflow(description: string): string {
  return `name: etl
description: ${JSON.stringify(description)}
defaults: { backoff: 50ms }
tasks:
  extract: { job: ${job('extract')}, count: 2 }
  transform: { job: ${job('transform')}, depends_on: [extract], retries: 1, env: { EMU_FAIL: "attempts<2" } }
  load: { job: ${job('load')}, depends_on: [transform] }
`;
}

/** An answer of the dashboard: status, headers and the parsed JSON (or text) body. */
export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

/** The local dashboard server over a harness's database, with small clients for its API. */
export interface DashboardClient {
  server: DashboardServer;
  url: string;
  get(path: string): Promise<Answer>;
  /** A POST as the dashboard's own page sends it: JSON body, action header, same-origin Origin. */
  action(path: string, body?: unknown, headers?: Record<string, string>): Promise<Answer>;
  /** A POST with exactly these headers (for the refusals). */
  post(path: string, body: string, headers: Record<string, string>): Promise<Answer>;
  close(): Promise<void>;
}

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  let body: unknown = text;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) body = JSON.parse(text);
  return { status: res.status, headers: res.headers, body };
}

/** Starts the dashboard on a free loopback port, as `tickrun dev` does. */
export async function startDashboard(h: Harness): Promise<DashboardClient> {
  const server = await startDashboardServer({ pool: h.db.pool, config: h.config, executors: h.deps.executors }, { port: 0 });
  const origin = server.url.replace(/\/$/, '');
  const post = async (path: string, body: string, headers: Record<string, string>) => answer(await fetch(origin + path, { method: 'POST', headers, body }));
  return {
    server,
    url: server.url,
    get: async (path) => answer(await fetch(origin + path)),
    action: (path, body = {}, headers = {}) =>
      post(path, JSON.stringify(body), { 'content-type': 'application/json', 'x-tickrun-action': '1', origin, ...headers }),
    post,
    close: () => server.close(),
  };
}
