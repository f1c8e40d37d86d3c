import type { IncomingMessage } from 'node:http';
import { HttpError } from './http';

/** The header every action must carry. A page on another site cannot send it without a CORS preflight, which this server never grants. */
export const ACTION_HEADER = 'x-tickrun-action';

/**
 * Where the dashboard runs, which decides what "its own page" is: `local` is `tickrun dev` on this
 * machine; `cloud` is the function, reached by people through `gcloud run services proxy`.
 */
export type DashboardMode = 'local' | 'cloud';

const LOOPBACK_HOSTS = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i;
const LOOPBACK_NAMES = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/i;

/**
 * Refuses a request whose Host is not this machine, for the local server: a site that points its own
 * name at 127.0.0.1 (DNS rebinding) would otherwise be same-origin with the dashboard.
 */
export function checkLoopbackHost(req: IncomingMessage): void {
  const host = req.headers.host ?? '';
  if (!LOOPBACK_HOSTS.test(host)) throw new HttpError(403, `Host "${host}" is not this machine: open the dashboard at http://127.0.0.1:PORT/ or http://localhost:PORT/`);
}

/**
 * Whether `value` (an Origin or a Referer) is a page served by `gcloud run services proxy`, which "runs a
 * server on localhost" on the port of `--port`, 8080 by default
 * (https://cloud.google.com/sdk/gcloud/reference/run/services/proxy): plain http, a loopback name, a port.
 */
export function isProxyAddress(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return url.protocol === 'http:' && url.port !== '' && LOOPBACK_NAMES.test(url.hostname);
}

/**
 * Lets an action (a POST that changes something) through only when a page of the dashboard itself
 * could have sent it: a JSON body and the action header (a form on another site can send neither), then
 * the page's origin as `mode` wants it. Throws HttpError 403 naming what is missing.
 */
export function checkActionRequest(req: IncomingMessage, mode: DashboardMode): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(403, `actions accept only a JSON body (Content-Type: application/json), not "${type || 'none'}"`);
  if (!req.headers[ACTION_HEADER]) throw new HttpError(403, `actions need the header X-Tickrun-Action: 1`);
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') throw new HttpError(403, `actions are accepted only from the dashboard's own pages (Sec-Fetch-Site is "${site}")`);
  if (mode === 'cloud') return checkProxyOrigin(req);
  // Locally the Host is known to be this machine's, so the browser's word that the page is of this origin suffices.
  if (site === 'same-origin') return;
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

const PROXY_HINT = 'open the dashboard through `gcloud run services proxy SERVICE --region REGION` at http://localhost:8080/';

/**
 * Behind the proxy the Host is the service's run.app name whatever the browser asked for, and the browser
 * counts as same-origin any page of the proxy's host and port: a page served as http://evil.example:8080
 * whose name then resolves to 127.0.0.1 (DNS rebinding) too. Its Origin still names evil.example (a script
 * cannot set Origin), so an action must come with an Origin on the proxy's loopback address. A page of
 * another local server (localhost:3000) is cross-origin: its custom header needs a preflight this server
 * never grants, and its Sec-Fetch-Site is not same-origin.
 *
 * Behind IAP or a load balancer the page's origin is a domain of its own, which this refuses: such a
 * deployment would name that origin here, and Host alone would then guard as it does locally.
 */
function checkProxyOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin;
  if (!origin) throw new HttpError(403, `actions need an Origin header on the loopback address of \`gcloud run services proxy\`, e.g. Origin: http://localhost:8080: ${PROXY_HINT}`);
  if (!isProxyAddress(origin)) throw new HttpError(403, `Origin "${origin}" is not the address of \`gcloud run services proxy\` (http://localhost:PORT, http://127.0.0.1:PORT or http://[::1]:PORT): ${PROXY_HINT}`);
}

/**
 * Answers a read of the JSON API behind the proxy only to the dashboard's own page: a rebinding page
 * (above) is same-origin and could read every run, its params and errors. A same-origin GET carries no
 * Origin, so the page sends its Referer (referrer-policy same-origin, server.ts), which a script can drop
 * but not point at another origin than its own. Sec-Fetch-Site cannot tell a browser from curl: Chromium
 * sends no Sec-Fetch-* to an origin that is not potentially trustworthy, such as http://evil.example, and
 * does to http://localhost; so only its "none" (an address the user typed) stands on its own. A client
 * that is not a browser names the proxy in Referer as the page does.
 */
export function checkApiRead(req: IncomingMessage): void {
  const site = req.headers['sec-fetch-site'];
  if (site === 'none') return;
  const from = req.headers.origin ?? req.headers.referer;
  if ((site === undefined || site === 'same-origin') && from && isProxyAddress(from)) return;
  throw new HttpError(
    403,
    `reads of the API are answered only to the dashboard's own page on the loopback address of \`gcloud run services proxy\` (Referer ${from ? `"${from}"` : 'none'}${site ? `, Sec-Fetch-Site "${site}"` : ''}); from a script, name it, e.g. Referer: http://localhost:8080/; or ${PROXY_HINT}`,
  );
}
