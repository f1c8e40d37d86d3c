import { UsageError } from '../errors';

/** Collects repeated `--param k=v` options into one object; a later key wins. */
export function collectParam(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new UsageError(`--param ${JSON.stringify(value)} is not valid: write it as key=value`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}
