import type { IncomingMessage } from 'node:http';
import { HttpError } from './http';

/** The header every action must carry. A page on another site cannot send it without a CORS preflight, which this server never grants. */
export const ACTION_HEADER = 'x-tickrun-action';

const LOOPBACK_HOSTS = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i;

/**
 * Refuses a request whose Host is not this machine, for the local server: a site that points its own
 * name at 127.0.0.1 (DNS rebinding) would otherwise be same-origin with the dashboard.
 */
export function checkLoopbackHost(req: IncomingMessage): void {
  const host = req.headers.host ?? '';
  if (!LOOPBACK_HOSTS.test(host)) throw new HttpError(403, `Host "${host}" is not this machine: open the dashboard at http://127.0.0.1:PORT/ or http://localhost:PORT/`);
}

/**
 * Lets an action (a POST that changes something) through only when a page of the dashboard itself
 * could have sent it: a JSON body, the action header, and the browser's word that the request is
 * same-origin (Sec-Fetch-Site), or, from a client that does not send that, an Origin naming this host.
 * A form on another site can send none of these. Throws HttpError 403 naming what is missing.
 */
export function checkActionRequest(req: IncomingMessage): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(403, `actions accept only a JSON body (Content-Type: application/json), not "${type || 'none'}"`);
  if (!req.headers[ACTION_HEADER]) throw new HttpError(403, `actions need the header X-Tickrun-Action: 1`);
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) {
    if (site !== 'same-origin') throw new HttpError(403, `actions are accepted only from the dashboard's own pages (Sec-Fetch-Site is "${site}")`);
    return;
  }
  const origin = req.headers.origin;
  if (!origin) throw new HttpError(403, 'actions need an Origin header naming this host, e.g. Origin: http://127.0.0.1:8787');
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    throw new HttpError(403, `Origin "${origin}" is not a URL`);
  }
  if (originHost !== req.headers.host) throw new HttpError(403, `Origin "${origin}" is not this dashboard (${req.headers.host ?? 'no Host'})`);
}
