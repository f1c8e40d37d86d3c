/** Milliseconds in one of each unit a duration may be written with, largest first. */
const UNITS: ReadonlyArray<readonly [string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
];

// `ms` must be tried before `m`, or "500ms" would read as 500 minutes followed by a stray "s".
const PART = /(\d+)(ms|d|h|m|s)/y;

/**
 * Reads a duration as written in workflow files and flags — `90s`, `10m`, `2h`, `500ms`, `1d`, or
 * units combined largest first like `1h30m` — and returns milliseconds. Throws a plain Error saying
 * what is wrong; callers wrap it with the file and field.
 */
export function parseDuration(text: string): number {
  const hint = 'write a whole number with a unit (d, h, m, s, ms), like 90s, 10m, 2h or 1h30m';
  if (typeof text !== 'string' || text.trim() === '') throw new Error(`a duration is required: ${hint}`);
  const source = text.trim();
  if (/^\d+$/.test(source)) throw new Error(`"${source}" has no unit: ${hint}`);
  let total = 0;
  let lastRank = -1;
  PART.lastIndex = 0;
  while (PART.lastIndex < source.length) {
    const at = PART.lastIndex;
    const match = PART.exec(source);
    if (!match) throw new Error(`"${source}" is not a duration: ${hint}`);
    const rank = UNITS.findIndex(([unit]) => unit === match[2]);
    // Each unit once and largest first, so "30m1h" or "1m1m" is refused rather than guessed at.
    if (rank <= lastRank) throw new Error(`"${source}" is not a duration (at "${source.slice(at)}"): ${hint}`);
    lastRank = rank;
    total += Number(match[1]) * UNITS[rank][1];
  }
  if (!Number.isSafeInteger(total)) throw new Error(`"${source}" is too long a duration`);
  return total;
}

/**
 * Writes milliseconds the way parseDuration reads them, for display: `1h30m`, `45s`, `250ms`,
 * `0s`. Negative values keep their sign; fractions of a millisecond are rounded.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  let rest = Math.round(Math.abs(ms));
  if (rest === 0) return '0s';
  let text = '';
  for (const [unit, size] of UNITS) {
    const amount = Math.floor(rest / size);
    if (amount > 0) text += `${amount}${unit}`;
    rest -= amount * size;
  }
  return ms < 0 ? `-${text}` : text;
}
