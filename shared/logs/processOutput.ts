import fs from 'node:fs';
import path from 'node:path';

/** How often --follow looks for new output of a process task: a local file read costs nothing. */
export const PROCESS_FOLLOW_MS = 250;

const PREFIX = 'process:';

/**
 * The output file of a process execution (`process:executions/<task id>/<attempt>`, see
 * executors/process.ts, whose wrapper appends the command's stdout and stderr to it); null for others.
 */
export function processOutputFile(home: string, executionName: string | null): string | null {
  if (!executionName?.startsWith(PREFIX)) return null;
  return path.join(home, executionName.slice(PREFIX.length), 'output.log');
}

/** What printing a process task's output needs: where bytes go, and the attempt's end for --follow. */
export interface ProcessOutputDeps {
  write: (chunk: Buffer) => void;
  finishedAt: () => Promise<Date | null>;
  wait?: (ms: number) => Promise<void>;
}

/** Writes the bytes of `file` from `offset` on; returns the new offset. A file not there yet has none. */
function copyFrom(file: string, offset: number, write: (chunk: Buffer) => void): number {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return offset;
    throw err;
  }
  try {
    const buffer = Buffer.alloc(64 * 1024);
    for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, offset)) > 0; offset += n) write(buffer.subarray(0, n));
    return offset;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Prints a process attempt's output as the task wrote it; with `follow`, then what it writes next, until
 * the attempt has ended (read from the database, as a tick records it), and then what was left.
 */
export async function printProcessOutput(file: string, running: boolean, follow: boolean, deps: ProcessOutputDeps): Promise<void> {
  const { write, wait = (ms) => new Promise((r) => setTimeout(r, ms)) } = deps;
  let offset = copyFrom(file, 0, write);
  if (!follow) return;
  while (running) {
    await wait(PROCESS_FOLLOW_MS);
    running = (await deps.finishedAt()) === null;
    offset = copyFrom(file, offset, write);
  }
}

/** The last `max` lines of a process attempt's output, read from its last `bytes` bytes; none when there is no file. */
export function tailLines(file: string, max: number, bytes = 64 * 1024): { lines: string[]; truncated: boolean } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], truncated: false };
    throw err;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const start = Math.max(0, size - bytes);
    const buffer = Buffer.alloc(size - start);
    fs.readSync(fd, buffer, 0, buffer.length, start);
    const lines = buffer.toString('utf8').replace(/\n$/, '').split('\n');
    // A read that starts mid-file starts mid-line: that first, partial line is dropped.
    if (start > 0) lines.shift();
    const all = size === 0 ? [] : lines;
    return { lines: all.slice(-max), truncated: start > 0 || all.length > max };
  } finally {
    fs.closeSync(fd);
  }
}
