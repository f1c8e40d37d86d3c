import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveFunction } from './functionServer';

/** The service's own host, as Cloud Run names it: what the function sees behind the proxy. */
export const RUN_APP_HOST = 'tickrun-dashboard-abc123-uc.a.run.app';

/**
 * An ID token as the container receives it. `gcloud auth print-identity-token` gives a user a token for
 * gcloud's own OAuth client (aud/azp), with the email claim; Cloud Run checks it, then "removes the token
 * signature before passing the token to the user container"
 * (https://cloud.google.com/run/docs/authenticating/service-to-service).
 */
export function forwardedIdToken(claims: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const payload = {
    iss: 'https://accounts.google.com',
    azp: '32555940559.apps.googleusercontent.com',
    aud: '32555940559.apps.googleusercontent.com',
    sub: '104729036542719850334',
    email: 'ada@example.com',
    email_verified: true,
    at_hash: 'X9mLJ3d2VqQ0yT7pWcN1rA',
    iat: now,
    exp: now + 3600,
    ...claims,
  };
  return `${part({ alg: 'RS256', kid: '6f7254101f56e41cf35c9926de84a2d552b4c6f1', typ: 'JWT' })}.${part(payload)}.SIGNATURE_REMOVED_BY_GOOGLE`;
}

/** A running model of `gcloud run services proxy` in front of the service. */
export interface ServicesProxy {
  /** Where a browser reaches it: http://localhost:PORT, the origin of the dashboard's own page. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * What stands between a browser and the container: `gcloud run services proxy` "runs a server on localhost
 * that proxies requests to the specified Cloud Run Service with credentials attached"
 * (https://cloud.google.com/sdk/gcloud/reference/run/services/proxy), and the request reaches the
 * container under the service's run.app Host, with the caller's ID token. Every other header, Origin,
 * Referer and Sec-Fetch-* among them, passes as the browser sent it.
 */
export async function startServicesProxy(target: string, opts: { token?: string | null } = {}): Promise<ServicesProxy> {
  const token = opts.token === undefined ? forwardedIdToken() : opts.token;
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers, host: RUN_APP_HOST };
    if (token) headers.authorization = `Bearer ${token}`;
    const out = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://localhost:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The `dashboard` target of the built bundle under the real functions-framework, with what it logged. */
export interface DashboardFunction {
  url: string;
  proc: ChildProcess;
  logs(): string;
  stop(): void;
}

/** Serves dist/tick.js's `dashboard` target as `functions-framework --target=dashboard` does in Google Cloud. */
export async function serveDashboardFunction(env: Record<string, string>): Promise<DashboardFunction> {
  const { origin, ...server } = await serveFunction('dashboard', env, (at) => fetch(`${at}/app.css`));
  return { url: origin, ...server };
}
