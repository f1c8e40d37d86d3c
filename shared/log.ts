/** Cloud Logging severities we use. */
export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';

/** Where log lines go: stderr by default, so `--json` output on stdout stays one document. */
let sink: (line: string) => void = (line) => process.stderr.write(line + '\n');
let quiet = false;

/** Redirects log lines (tests, `tickrun dev`'s human output) or silences them. */
export function setLogSink(next: ((line: string) => void) | null): void {
  quiet = next === null;
  if (next) sink = next;
}

/**
 * Writes one JSON line with the keys Cloud Logging reads: severity, message, and labels
 * (run and task ids) under `logging.googleapis.com/labels` so a log query can filter on them.
 */
export function log(severity: Severity, message: string, labels?: Record<string, string>, fields?: Record<string, unknown>): void {
  if (quiet) return;
  const entry: Record<string, unknown> = { severity, message, ...fields };
  if (labels) entry['logging.googleapis.com/labels'] = labels;
  sink(JSON.stringify(entry));
}
