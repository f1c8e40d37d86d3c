import { entryText, type EntryPage, type PageRequest, type ReadPage } from './cloudLogging';
import { executionLogTerms, type ExecutionParts } from './executionQuery';

/**
 * Reads of entries.list this command makes in any minute. Cloud Logging's read quota is per project
 * (cloud.google.com/logging/quotas: entries.list requests, 60 a minute per project by default; earlier
 * revisions of the page said "1 per second, per project"), and the console, gcloud and other operators
 * draw on it too: half of it is left to them.
 */
export const READS_PER_MINUTE = 30;

/** How often --follow reads an execution's new entries: 12 reads a minute, well within READS_PER_MINUTE. */
export const FOLLOW_INTERVAL_MS = 5000;

/**
 * How long to wait before the one retry of a read refused for quota (429 RESOURCE_EXHAUSTED): enough for a
 * burst of other readers to pass; a quota spent for the whole minute is better answered by the console link.
 */
export const QUOTA_RETRY_MS = 2000;

/** Entries are stamped by the machine that wrote them: a window this much wider keeps those of a skewed clock. */
const CLOCK_SKEW_MS = 60_000;

const PERMISSION_DENIED = 7;
const RESOURCE_EXHAUSTED = 8;

type Sleep = (ms: number) => Promise<void>;
const sleep: Sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits as needed so that no more than `perMinute` reads start in any 60 s. */
export function readPacer(perMinute = READS_PER_MINUTE, now = Date.now, wait: Sleep = sleep): () => Promise<void> {
  const started: number[] = [];
  return async () => {
    while (started.length >= perMinute) {
      const ms = started[0] + 60_000 - now();
      if (ms > 0) await wait(ms);
      started.shift();
    }
    started.push(now());
  };
}

/** Why a read failed, as a user reads it: the API's status and message, or the client's. */
function refusal(err: unknown): string {
  const e = err as { code?: number; details?: string; message?: string };
  const status = { [PERMISSION_DENIED]: 'PERMISSION_DENIED', [RESOURCE_EXHAUSTED]: 'RESOURCE_EXHAUSTED' }[e.code ?? -1];
  const text = e.details || e.message || String(err);
  return status && !text.includes(status) ? `${status}: ${text}` : text;
}

/**
 * One page, paced; a read refused for quota is tried once more after QUOTA_RETRY_MS. Returns why it could
 * not be read instead of the page when it could not.
 */
async function readPage(read: ReadPage, pace: () => Promise<void>, wait: Sleep, request: PageRequest): Promise<EntryPage | string> {
  for (let tries = 1; ; tries++) {
    await pace();
    try {
      return await read(request);
    } catch (err) {
      if ((err as { code?: number }).code !== RESOURCE_EXHAUSTED || tries === 2) return refusal(err);
      await wait(QUOTA_RETRY_MS);
    }
  }
}

/** The execution's query over the window from `from` (RFC 3339) to `to` (open while it runs), widened by CLOCK_SKEW_MS at the end. */
function windowFilter(parts: ExecutionParts, from: string, to: Date | null): string {
  const until = to ? [`timestamp<="${new Date(to.getTime() + CLOCK_SKEW_MS).toISOString()}"`] : [];
  return [...executionLogTerms(parts), `timestamp>="${from}"`, ...until].join(' AND ');
}

/** The attempt's window: from its dispatch to its end (open while it runs), widened by CLOCK_SKEW_MS. */
export interface Window {
  from: Date;
  to: Date | null;
}

/** What printing an execution's log needs: the reader, the pacer, where lines go, and whether the attempt has ended. */
export interface ExecutionLogDeps {
  read: ReadPage;
  pace: () => Promise<void>;
  out: (line: string) => void;
  /** Re-reads the attempt's end, for --follow; null while it runs. */
  finishedAt: () => Promise<Date | null>;
  wait?: Sleep;
}

/**
 * Prints an execution's entries, oldest first, page by page; with `follow`, reads new ones every
 * FOLLOW_INTERVAL_MS until the attempt has ended, then once more for entries that arrive late. Returns
 * null, or why Cloud Logging could not be read (the caller then gives the console link).
 */
export async function printExecutionLog(parts: ExecutionParts, window: Window, follow: boolean, deps: ExecutionLogDeps): Promise<string | null> {
  const { read, pace, out, wait = sleep } = deps;
  let from = new Date(window.from.getTime() - CLOCK_SKEW_MS).toISOString();
  let to = window.to;
  // Entries printed at the newest timestamp so far: the next read starts at that timestamp, inclusive.
  let seenAtFrom = new Set<string>();
  const readOnce = async (): Promise<string | null> => {
    const filter = windowFilter(parts, from, to);
    let pageToken: string | undefined;
    do {
      const page = await readPage(read, pace, wait, { project: parts.project, filter, pageToken });
      if (typeof page === 'string') return page;
      for (const entry of page.entries) {
        const at = timestampOf(entry);
        const id = entry.insertId ?? '';
        if (at === from && seenAtFrom.has(id)) continue;
        if (at !== from) [from, seenAtFrom] = [at, new Set()];
        seenAtFrom.add(id);
        out(entryText(entry));
      }
      pageToken = page.nextPageToken;
    } while (pageToken);
    return null;
  };
  let why = await readOnce();
  while (!why && follow && !to) {
    await wait(FOLLOW_INTERVAL_MS);
    to = await deps.finishedAt();
    why = await readOnce();
  }
  return why;
}

/** An entry's timestamp as RFC 3339, as the filter compares it. */
function timestampOf(entry: { timestamp?: { seconds?: unknown; nanos?: number | null } | null }): string {
  const seconds = Number(entry.timestamp?.seconds ?? 0);
  const nanos = entry.timestamp?.nanos ?? 0;
  const base = new Date(seconds * 1000).toISOString().slice(0, 19);
  return `${base}.${String(nanos).padStart(9, '0')}Z`;
}

/**
 * The last `max` lines of an execution's log, for the dashboard: one read of one page, newest first, shown
 * oldest first. `truncated` when older entries were left out.
 */
export async function readLatestLines(parts: ExecutionParts, window: Window, max: number, read: ReadPage, wait: Sleep = sleep): Promise<{ lines: string[]; truncated: boolean } | { error: string }> {
  const from = new Date(window.from.getTime() - CLOCK_SKEW_MS).toISOString();
  const page = await readPage(read, async () => {}, wait, { project: parts.project, filter: windowFilter(parts, from, window.to), newestFirst: true, pageSize: max });
  if (typeof page === 'string') return { error: page };
  return { lines: page.entries.map(entryText).reverse(), truncated: Boolean(page.nextPageToken) };
}
