import type { IncomingMessage } from 'node:http';
import { log } from '../log';
import { checkActionRequest, type DashboardMode } from './guard';
import { statusOf } from './http';

/** What an action was aimed at, as labels a log query filters on (the tick labels its entries the same way). */
export interface ActionTarget {
  workflow?: string;
  run_id?: string;
}

/**
 * Who is calling, for the log. In Google Cloud, Cloud Run's IAM check verified the caller's ID token before
 * the request reached the container, and "removes the token signature before passing the token to the user
 * container" (https://cloud.google.com/run/docs/authenticating/service-to-service): the payload is read as
 * it is, since there is nothing left to verify and nothing to verify again. The token is in
 * X-Serverless-Authorization when the caller put it there (then that is the one Cloud Run checked), else in
 * Authorization, where `gcloud run services proxy` puts it. Its email names the person or service account;
 * a token without one (a service account's, asked for without the email) is named by its subject.
 *
 * Locally nothing checks a token, so none is believed: the caller is the person at this machine, "local".
 * In the cloud a request without a token passed no IAM check (the service would have to admit allUsers):
 * "unknown".
 */
export function principalOf(req: IncomingMessage, mode: DashboardMode): string {
  if (mode === 'local') return 'local';
  const header = req.headers['x-serverless-authorization'] ?? req.headers.authorization;
  const token = /^Bearer\s+(\S+)$/i.exec(String(header ?? ''))?.[1];
  const claims = token ? tokenClaims(token) : undefined;
  if (typeof claims?.email === 'string' && claims.email) return claims.email;
  if (typeof claims?.sub === 'string' && claims.sub) return `sub:${claims.sub}`;
  return 'unknown';
}

function tokenClaims(token: string): Record<string, unknown> | undefined {
  try {
    const claims: unknown = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
    return typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Passes an action through the request guard, performs it and logs it once: INFO with the action, its
 * target, the status answered and the principal, whatever the outcome; WARNING with the reason when the
 * guard refuses it, which is where a page that is not the dashboard's shows. `perform` fills `target` as
 * it learns it (a trigger's workflow and run).
 */
export async function auditAction<A extends { status: number }>(req: IncomingMessage, mode: DashboardMode, action: string, target: ActionTarget, perform: () => Promise<A>): Promise<A> {
  const principal = principalOf(req, mode);
  const labels = () => Object.fromEntries(Object.entries(target).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
  try {
    checkActionRequest(req, mode);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    log('WARNING', `dashboard action ${action} by ${principal} refused: ${reason}`, labels(), { action, principal, status: statusOf(err), reason });
    throw err;
  }
  let status = 500;
  try {
    const answer = await perform();
    status = answer.status;
    return answer;
  } catch (err) {
    status = statusOf(err);
    throw err;
  } finally {
    log('INFO', `dashboard action ${action} by ${principal}: ${status}`, labels(), { action, principal, status });
  }
}
