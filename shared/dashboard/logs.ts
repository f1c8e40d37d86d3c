import type { Pool } from 'pg';
import type { Config } from '../config';
import { attemptWindow, findAttempt } from '../logs/attempt';
import { createPageReader, type ReadPage } from '../logs/cloudLogging';
import { executionParts } from '../logs/executionQuery';
import { readLatestLines } from '../logs/executionLog';
import { processOutputFile, tailLines } from '../logs/processOutput';
import { HttpError, checkParams } from './http';
import { executionLinks } from './links';

/** Lines one on-demand load gives: a page of entries.list, one read of the project's quota. */
export const LOADED_LINES = 200;

/** Lines of each process attempt given with its run (every poll): a few, from the end of its output. */
export const TAIL_LINES = 5;

/** One attempt's output as the run page shows it. */
export interface AttemptOutput {
  source: 'process' | 'cloud-logging';
  lines: string[];
  /** Earlier lines were left out. */
  truncated: boolean;
  /** Why Cloud Logging could not be read; logsUrl then leads to the entries in the console. */
  error?: string;
  logsUrl?: string;
}

// One client per address: the dashboard's process keeps it, as a tick keeps its Cloud Run clients.
const readers = new Map<string, ReadPage>();

/** A whole number query parameter, at least `min`; `fallback` when absent. HttpError 400 naming it. */
function readWhole(query: URLSearchParams, key: string, min: number, fallback?: number): number | undefined {
  const raw = query.get(key);
  if (raw === null) return fallback;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min)) throw new HttpError(400, `${key} "${raw}" is not valid: it accepts a whole number from ${min}`);
  return n;
}

/**
 * GET /api/runs/ID/logs?task=T&index=I&attempt=N: one attempt's output, loaded when the page asks for it
 * (a button), never with the run's polls: a Cloud Run attempt's costs a read of Cloud Logging's per-project
 * quota. When Logging refuses, the answer says why and gives the console link.
 */
export async function attemptOutput(pool: Pool, config: Config, runId: string, query: URLSearchParams): Promise<AttemptOutput> {
  checkParams(query, '/api/runs/ID/logs', ['task', 'index', 'attempt']);
  const task = query.get('task');
  if (!task) throw new HttpError(400, 'parameter "task" is required: the task name');
  const index = readWhole(query, 'index', 0, 0)!;
  const ref = await findAttempt(pool, runId, `${task}:${index}`, readWhole(query, 'attempt', 1));
  const file = processOutputFile(config.home, ref.executionName);
  if (file) return { source: 'process', ...tailLines(file, 1000) };
  const parts = executionParts(ref.executionName);
  if (!parts) return { source: 'cloud-logging', lines: [], truncated: false, error: `attempt ${ref.attempt} has not been sent to its executor yet` };
  const host = config.cloudLogging?.emulatorHost ?? '';
  if (!readers.has(host)) readers.set(host, createPageReader(host || undefined));
  const read = await readLatestLines(parts, attemptWindow(ref), LOADED_LINES, readers.get(host)!);
  if ('error' in read) return { source: 'cloud-logging', lines: [], truncated: false, error: read.error, logsUrl: executionLinks(ref.executionName)!.logsUrl };
  return { source: 'cloud-logging', ...read };
}

/** The last TAIL_LINES lines of a process attempt's output, given with its run; null for other executions. */
export function outputTail(home: string, executionName: string | null): string[] | null {
  const file = processOutputFile(home, executionName);
  return file ? tailLines(file, TAIL_LINES, 4096).lines : null;
}
