import type { Pool } from 'pg';
import type { Config } from '../config';
import { executionLinks } from '../dashboard/links';
import { attemptWindow, findAttempt } from './attempt';
import { createPageReader } from './cloudLogging';
import { executionParts } from './executionQuery';
import { printExecutionLog, readPacer } from './executionLog';
import { printProcessOutput, processOutputFile } from './processOutput';

/** What `tickrun logs` was asked. */
export interface LogsRequest {
  runId: string;
  task?: string;
  attempt?: number;
  follow: boolean;
}

/** Where output goes: the task's own bytes or lines on `write`, notes about them on `note` (stderr). */
export interface LogsIo {
  write: (chunk: Buffer | string) => void;
  note: (line: string) => void;
}

/**
 * Prints one attempt's output: a process task's output.log, or a Cloud Run execution's entries from Cloud
 * Logging; when those cannot be read, why, and the console link to them.
 */
export async function showLogs(pool: Pool, config: Config, req: LogsRequest, io: LogsIo): Promise<void> {
  const ref = await findAttempt(pool, req.runId, req.task, req.attempt);
  const where = `${ref.label} attempt ${ref.attempt}`;
  if (!ref.executionName) return io.note(`${where} has not been sent to its executor yet: it has no output`);
  // The attempt's end, read again while following (it was null when the command began).
  const finishedAt = async () => (await findAttempt(pool, req.runId, ref.label, ref.attempt)).finishedAt;

  const file = processOutputFile(config.home, ref.executionName);
  if (file) return printProcessOutput(file, ref.finishedAt === null, req.follow, { write: io.write, finishedAt });

  const parts = executionParts(ref.executionName);
  if (!parts) return io.note(`${where} ran as ${ref.executionName}, whose output tickrun cannot read`);
  const why = await printExecutionLog(parts, attemptWindow(ref), req.follow, {
    read: createPageReader(config.cloudLogging?.emulatorHost),
    pace: readPacer(),
    out: (line) => io.write(line + '\n'),
    finishedAt,
  });
  if (why === null) return;
  io.note(`tickrun: cannot read ${where}'s logs from Cloud Logging (${why}); they are in the console:`);
  io.write(executionLinks(ref.executionName)!.logsUrl + '\n');
}
