import crypto from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { listRegions } from '../model/regions';
import { listWorkflows } from '../model/workflows';
import { cancelAction, retryAction, triggerAction, type ActionDeps } from './actions';
import { APP_JS } from './assets/app';
import { PAGE_HTML } from './assets/page';
import { STYLE_CSS } from './assets/style';
import { auditAction, type ActionTarget } from './audit';
import { checkApiRead, checkLoopbackHost, type DashboardMode } from './guard';
import { HttpError, readJsonBody, sendInternalError, sendJson, statusOf } from './http';
import { getRunDetail, parseTaskFilter } from './runDetail';
import { attemptOutput } from './logs';
import { listRunSummaries, parseRunFilter } from './runList';

/** What the dashboard reads and acts on: the same database and executors as a tick. */
export type DashboardDeps = ActionDeps;

/** A static file of the page, kept gzipped beside the plain bytes: the page is built once per process. */
interface Asset {
  type: string;
  raw: Buffer;
  gzip: Buffer;
  etag: string;
}

function asset(type: string, text: string): Asset {
  const raw = Buffer.from(text);
  return { type, raw, gzip: zlib.gzipSync(raw, { level: 9 }), etag: `"${crypto.createHash('sha1').update(raw).digest('base64url').slice(0, 16)}"` };
}

/** The page's files by path: one HTML page, one script, one stylesheet; nothing else is loaded. */
export const ASSETS: Record<string, Asset> = {
  '/': asset('text/html; charset=utf-8', PAGE_HTML),
  '/app.js': asset('text/javascript; charset=utf-8', APP_JS),
  '/app.css': asset('text/css; charset=utf-8', STYLE_CSS),
};

// Only the dashboard's own files run: user text that slipped into the DOM as HTML still could not
// load or run a script. frame-ancestors keeps the actions' buttons out of other sites' frames.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function sendAsset(req: IncomingMessage, res: ServerResponse, a: Asset): void {
  const headers: Record<string, string | number> = {
    'content-type': a.type,
    'cache-control': 'no-cache',
    etag: a.etag,
    vary: 'accept-encoding',
    'x-content-type-options': 'nosniff',
    'content-security-policy': CSP,
    // The page's own requests name it (the cloud guard reads it); links to other sites still carry nothing.
    'referrer-policy': 'same-origin',
  };
  if (req.headers['if-none-match'] === a.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const body = gzip ? a.gzip : a.raw;
  res.writeHead(200, { ...headers, ...(gzip && { 'content-encoding': 'gzip' }), 'content-length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}

type Route = (deps: DashboardDeps, req: IncomingMessage, url: URL, params: string[], target: ActionTarget) => Promise<{ status: number; body: unknown }>;

const ok = (body: unknown) => ({ status: 200, body });

/** A trigger, its target learnt as it goes: the workflow from the body, the run from the answer. */
const trigger: Route = async (d, req, _url, _params, target) => {
  const body = await readJsonBody(req);
  const workflow = (body as { workflow?: unknown } | null)?.workflow;
  if (typeof workflow === 'string') target.workflow = workflow;
  const answer = await triggerAction(d, body);
  target.run_id = answer.body.runId;
  return answer;
};

/** The JSON API: method, path pattern, handler, and for a POST the action's name: an action passes the request guard and is logged with its principal (audit.ts). */
const ROUTES: [string, RegExp, Route, string?][] = [
  ['GET', /^\/api\/runs$/, async (d, _req, url) => ok(await listRunSummaries(d.pool, parseRunFilter(url.searchParams)))],
  ['GET', /^\/api\/runs\/([^/]+)$/, async (d, _req, url, [id]) => ok(await getRunDetail(d.pool, id, parseTaskFilter(url.searchParams), d.config.home, d.config.regions))],
  ['GET', /^\/api\/runs\/([^/]+)\/logs$/, async (d, _req, url, [id]) => ok(await attemptOutput(d.pool, d.config, id, url.searchParams))],
  ['GET', /^\/api\/workflows$/, async (d) => ok({ workflows: await listWorkflows(d.pool) })],
  ['GET', /^\/api\/regions$/, async (d) => ok({ regions: await listRegions(d.pool, d.config.regions) })],
  ['POST', /^\/api\/runs$/, trigger, 'trigger'],
  ['POST', /^\/api\/runs\/([^/]+)\/cancel$/, async (d, _req, _url, [id], target) => cancelAction(d, (target.run_id = id)), 'cancel'],
  ['POST', /^\/api\/runs\/([^/]+)\/retry$/, async (d, _req, _url, [id], target) => retryAction(d, (target.run_id = id)), 'retry'],
];

async function route(deps: DashboardDeps, req: IncomingMessage, res: ServerResponse, mode: DashboardMode): Promise<void> {
  if (mode === 'local') checkLoopbackHost(req);
  const url = new URL(req.url ?? '/', 'http://dashboard');
  const method = req.method ?? 'GET';
  const page = ASSETS[url.pathname === '/index.html' ? '/' : url.pathname];
  if (page) {
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, `use GET for ${url.pathname}`);
    return sendAsset(req, res, page);
  }
  const matches = ROUTES.map(([m, pattern, handler, action]) => ({ m, handler, action, params: pattern.exec(url.pathname) })).filter((r) => r.params);
  if (matches.length === 0) throw new HttpError(404, `no such page: ${url.pathname} (the API is /api/runs, /api/runs/ID, /api/runs/ID/logs, /api/workflows, /api/regions)`);
  const match = matches.find((r) => r.m === method);
  if (!match) {
    res.setHeader('allow', matches.map((r) => r.m).join(', '));
    throw new HttpError(405, `use ${matches.map((r) => r.m).join(' or ')} for ${url.pathname}`);
  }
  const params = match.params!.slice(1).map(decodeURIComponent);
  const target: ActionTarget = {};
  const perform = () => match.handler(deps, req, url, params, target);
  if (!match.action && mode === 'cloud') checkApiRead(req);
  const { status, body } = match.action ? await auditAction(req, mode, match.action, target, perform) : await perform();
  sendJson(res, status, body);
}

/**
 * The dashboard as one request handler, for node:http (`tickrun dev`) and for functions-framework
 * (Express passes its own request and response, which extend node's). `local` refuses any Host but this
 * machine's: the local server has no other guard. `cloud`, the default, sits behind IAM and is reached
 * through `gcloud run services proxy`, whose address its actions must come from (guard.ts).
 */
export function dashboardHandler(deps: DashboardDeps, opts: { mode?: DashboardMode } = {}): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const mode = opts.mode ?? 'cloud';
  return async (req, res) => {
    try {
      await route(deps, req, res, mode);
    } catch (err) {
      // Our own 4xx messages are meant for the user; anything else is logged and answered by reference.
      const status = statusOf(err);
      if (status < 500 && !res.headersSent) return sendJson(res, status, { error: (err as Error).message });
      sendInternalError(req, res, err);
    }
  };
}

/** A running local dashboard. */
export interface DashboardServer {
  url: string;
  close(): Promise<void>;
}

/** Serves the dashboard on 127.0.0.1 (port 0: a free one), for `tickrun dev` and the tests. */
export async function startDashboardServer(deps: DashboardDeps, opts: { port: number }): Promise<DashboardServer> {
  const server = http.createServer(dashboardHandler(deps, { mode: 'local' }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Polling pages keep connections alive; they must not hold `tickrun dev` open on Ctrl-C.
        server.closeAllConnections();
      }),
  };
}
