import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A model of Cloud Logging API v2's `entries.list` over REST, for the real client in fallback mode
 * (https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list). Only what tickrun sends is
 * modelled: POST /v2/entries:list with resourceNames, filter, orderBy, pageSize and pageToken; a filter
 * that is a conjunction (AND) of comparisons, of which the ones tickrun writes are evaluated (see
 * FILTER_TERM). Anything else is answered 400 INVALID_ARGUMENT, so a query this model cannot evaluate
 * fails the test instead of matching by accident.
 */

/** One stored entry: the LogEntry fields tickrun reads or filters on (LogEntry reference, v2/LogEntry). */
export interface EmulatedEntry {
  logName: string;
  resource: { type: string; labels: Record<string, string> };
  labels?: Record<string, string>;
  /** RFC 3339, as the REST surface writes LogEntry.timestamp. */
  timestamp: string;
  severity?: string;
  textPayload?: string;
  jsonPayload?: Record<string, unknown>;
  insertId: string;
}

/** What one entries:list request asked for, as the tests inspect it. */
export interface ListRequest {
  resourceNames: string[];
  filter: string;
  orderBy?: string;
  pageSize?: number;
  pageToken?: string;
}

/** A Cloud Logging REST emulator on loopback. */
export interface LoggingEmulator {
  /** '127.0.0.1:PORT' for CLOUD_LOGGING_EMULATOR_HOST. */
  host: string;
  entries: EmulatedEntry[];
  /** Every entries:list request, in order, refused ones included. */
  requests: ListRequest[];
  /**
   * The most entries one page holds whatever pageSize asks: the reference says pageSize is "the maximum
   * number of results" and that a nextPageToken means more "might be available", so a server may
   * answer fewer. A small value makes a short log span several pages. Default 1000, pageSize's bound.
   */
  maxPageSize: number;
  /** The next `times` requests are refused with this HTTP status (403 PERMISSION_DENIED, 429 RESOURCE_EXHAUSTED). */
  refuse(status: 403 | 429, times?: number): void;
  stop(): Promise<void>;
}

/**
 * A comparison of the logging query language (cloud.google.com/logging/docs/view/logging-query-language):
 * a field path (`resource.type`, `resource.labels.job_name`, `labels."run.googleapis.com/execution_name"`,
 * `timestamp`), an operator, and a quoted value. `=` is equality here: the language's `=` on a string
 * field is an exact match; `>=`, `<=`, `>` and `<` are used on timestamp only, compared as instants.
 */
const FILTER_TERM = /^([a-z_]+(?:\.[a-z_]+)*(?:\."[^"]+")?)\s*(=|>=|<=|>|<)\s*"((?:[^"\\]|\\.)*)"$/;

const STATUS_NAMES: Record<number, string> = { 400: 'INVALID_ARGUMENT', 403: 'PERMISSION_DENIED', 429: 'RESOURCE_EXHAUSTED' };

class Invalid extends Error {}

/** The value at a field path of an entry; labels' keys are quoted when they hold dots. */
function fieldValue(entry: EmulatedEntry, path: string): string | undefined {
  const quoted = /^(.*)\."([^"]+)"$/.exec(path);
  const [head, key] = quoted ? [quoted[1], quoted[2]] : [path.slice(0, path.lastIndexOf('.')), path.slice(path.lastIndexOf('.') + 1)];
  if (path === 'resource.type') return entry.resource.type;
  if (path === 'timestamp') return entry.timestamp;
  if (head === 'resource.labels') return entry.resource.labels[key];
  if (head === 'labels') return entry.labels?.[key];
  throw new Invalid(`field ${path} is not modelled`);
}

/** A filter as a predicate; the language's AND (upper case) joins comparisons, as tickrun writes them. */
export function parseFilter(filter: string): (entry: EmulatedEntry) => boolean {
  const terms = filter.trim() === '' ? [] : filter.split(/\s+AND\s+/);
  const tests = terms.map((term) => {
    const m = FILTER_TERM.exec(term.trim());
    if (!m) throw new Invalid(`cannot evaluate filter term ${JSON.stringify(term)}`);
    const [, path, op, raw] = m;
    const value = raw.replace(/\\(.)/g, '$1');
    if (op !== '=' && path !== 'timestamp') throw new Invalid(`operator ${op} is modelled on timestamp only`);
    return (entry: EmulatedEntry) => {
      const actual = fieldValue(entry, path);
      if (actual === undefined) return false;
      if (op === '=') return actual === value;
      const [a, b] = [Date.parse(actual), Date.parse(value)];
      if (Number.isNaN(b)) throw new Invalid(`${value} is not a timestamp`);
      return op === '>=' ? a >= b : op === '<=' ? a <= b : op === '>' ? a > b : a < b;
    };
  });
  return (entry) => tests.every((t) => t(entry));
}

/** Starts the emulator on a free loopback port. */
export async function startLoggingEmulator(): Promise<LoggingEmulator> {
  let refusals: { status: 403 | 429; left: number } | null = null;
  const emulator: LoggingEmulator = {
    host: '',
    entries: [],
    requests: [],
    maxPageSize: 1000,
    refuse(status, times = 1) {
      refusals = { status, left: times };
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };

  const error = (code: number, message: string) => ({ status: code, body: { error: { code, message, status: STATUS_NAMES[code] } } });

  function list(req: ListRequest): { status: number; body: unknown } {
    emulator.requests.push(req);
    if (refusals && refusals.left > 0) {
      refusals.left -= 1;
      const { status } = refusals;
      return error(status, status === 403 ? "Permission 'logging.logEntries.list' denied on resource (or it may not exist)." : "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute'.");
    }
    // resourceNames is required; projects/[PROJECT_ID] is the form tickrun sends (entries.list reference).
    const projects = (req.resourceNames ?? []).map((n) => /^projects\/([^/]+)$/.exec(n)?.[1]);
    if (projects.length === 0 || projects.some((p) => p === undefined)) return error(400, 'resourceNames must name projects/[PROJECT_ID]');
    // pageSize: "Default is 50. If the value is negative or exceeds 1000, the request is rejected."
    const pageSize = req.pageSize ?? 50;
    if (pageSize < 0 || pageSize > 1000) return error(400, `pageSize ${pageSize} is out of range`);
    // orderBy: "timestamp asc" (default) or "timestamp desc"; ties are in insertId order.
    const order = req.orderBy || 'timestamp asc';
    if (order !== 'timestamp asc' && order !== 'timestamp desc') return error(400, `orderBy ${order} is not permitted`);
    let matches: (e: EmulatedEntry) => boolean;
    try {
      matches = parseFilter(req.filter ?? '');
    } catch (err) {
      return error(400, (err as Error).message);
    }
    const byProject = (e: EmulatedEntry) => projects.includes(/^projects\/([^/]+)\//.exec(e.logName)?.[1]);
    const sorted = emulator.entries
      .filter((e) => byProject(e) && matches(e))
      .sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp) || a.insertId.localeCompare(b.insertId));
    if (order === 'timestamp desc') sorted.reverse();
    // The token names where the next page starts; it is opaque to the client.
    const start = req.pageToken ? Number(Buffer.from(req.pageToken, 'base64url').toString()) : 0;
    if (!Number.isInteger(start) || start < 0) return error(400, 'pageToken is not valid');
    const size = Math.min(pageSize || 50, emulator.maxPageSize);
    const page = sorted.slice(start, start + size);
    const next = start + page.length < sorted.length ? Buffer.from(String(start + page.length)).toString('base64url') : undefined;
    return { status: 200, body: { entries: page, ...(next && { nextPageToken: next }) } };
  }

  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const path = (request.url ?? '').split('?')[0];
      let answer: { status: number; body: unknown };
      if (request.method === 'POST' && path === '/v2/entries:list') {
        try {
          answer = list(JSON.parse(Buffer.concat(chunks).toString() || '{}'));
        } catch {
          answer = error(400, 'the request body is not JSON');
        }
      } else {
        answer = { status: 404, body: { error: { code: 404, message: `${request.method} ${path} is not modelled`, status: 'NOT_FOUND' } } };
      }
      response.writeHead(answer.status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  emulator.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return emulator;
}
