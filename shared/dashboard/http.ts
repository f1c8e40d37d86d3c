import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { NotFoundError, UsageError } from '../errors';
import { log } from '../log';

/** An answer other than 200 that the dashboard gives on purpose: a status and a message for `{"error"}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/**
 * The status an error is answered with: ours (HttpError) as they say; the read model's and the operator
 * API's, which speak the CLI's errors, 404 for nothing by that name and 400 for bad input; any other 500.
 */
export function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof UsageError) return 400;
  return 500;
}

/**
 * Writes a JSON answer; never cached, since every answer reads the database as it is now. nosniff: an
 * answer holds user text (params, errors), which a browser must never take for HTML or a script.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Answers 500 without the error's text, which can name tables, columns, statements or addresses that are
 * none of the caller's business, and logs it in full under a short reference the answer gives: what a user
 * reports is found with `labels.ref="…"` in Logs Explorer. The stack goes in `stack_trace`, a field Error
 * Reporting reads (https://cloud.google.com/error-reporting/docs/formatting-error-messages).
 */
export function sendInternalError(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  const ref = crypto.randomBytes(4).toString('hex');
  const { name, message, stack, code } = err instanceof Error ? (err as Error & { code?: unknown }) : { name: 'Error', message: String(err), stack: undefined, code: undefined };
  log('ERROR', `dashboard ${req.method} ${req.url} failed (ref ${ref}): ${message}`, { ref }, { error: { name, ...(code !== undefined && { code }) }, ...(stack && { stack_trace: stack }) });
  // A failure after the answer began (a client gone mid-write) can only end it.
  if (res.headersSent) return void res.end();
  sendJson(res, 500, { error: 'internal error', ref });
}

// Action bodies are a workflow name, a few params and a key: anything larger is a mistake or an attack.
const MAX_BODY_BYTES = 64 * 1024;

/**
 * The request's JSON body. Under functions-framework, Express has already read and parsed it into
 * `req.body`; under plain node:http it is read from the stream here. An empty body is `{}`.
 */
export async function readJsonBody(req: IncomingMessage & { body?: unknown }): Promise<unknown> {
  if (req.body !== undefined && req.readableEnded) {
    // Express leaves {} for an empty body, and a Buffer or string when it did not parse JSON.
    if (typeof req.body === 'string' || Buffer.isBuffer(req.body)) return parseJson(req.body.toString());
    return req.body;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return parseJson(Buffer.concat(chunks).toString('utf8'));
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'the body is not valid JSON');
  }
}

/** Refuses a query parameter the route does not take: 400 naming it and listing those it does. */
export function checkParams(query: URLSearchParams, route: string, allowed: string[]): void {
  for (const key of query.keys()) {
    if (!allowed.includes(key)) throw new HttpError(400, `unknown parameter "${key}": ${route} takes ${allowed.slice(0, -1).join(', ')} and ${allowed.at(-1)}`);
  }
}

/** An optional query parameter that must be one of `values` (a `kind` of status): 400 listing them. */
export function readOneOf<T extends string>(query: URLSearchParams, key: string, values: readonly T[], kind: string): T | undefined {
  const value = query.get(key) as T | null;
  if (!value) return undefined;
  if (!values.includes(value)) throw new HttpError(400, `${key} "${value}" is not a ${kind}: use one of ${values.join(', ')}`);
  return value;
}

/** The `limit` query parameter, a whole number from 1 to `max`; `fallback` when absent. */
export function readLimit(query: URLSearchParams, max: number, fallback: number): number {
  const limit = query.get('limit');
  if (limit === null) return fallback;
  const n = /^\d+$/.test(limit) ? Number(limit) : NaN;
  if (!(n >= 1 && n <= max)) throw new HttpError(400, `limit "${limit}" is not valid: it accepts a whole number from 1 to ${max}`);
  return n;
}
