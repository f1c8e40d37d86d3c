import { FULL, runChaos, SMALL } from './chaos';

// `npm test` runs the small size; `npm run test:chaos` the full one (CHAOS_SIZE=full), and
// CHAOS_SEED=n replays a run. The seed is printed either way.
const full = process.env.CHAOS_SIZE === 'full';
const size = full ? FULL : SMALL;
const seed = process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : Math.floor(Math.random() * 2 ** 31);

describe(`chaos (${full ? 'full' : 'small'} size)`, () => {
  it(`seed ${seed}: every run ends as it must (timeouts, cancels and a limit changed mid-run among them), no attempt started twice, no task lost, no attempt spent on a fault, no deadlock`, async () => {
    const report = await runChaos(size, seed);
    process.stdout.write(`${report.line}\n`);
    expect(report.kills).toBe(size.kills);
    expect(report.faults).toBeGreaterThan(0);
    expect(report.duplicates).toBe(0);
    expect(report.lost).toBe(0);
    expect(report.deadlocks).toBe(0);
    expect(report.cancels).toBeGreaterThan(0);
    expect(report.limitChanges).toBe(2);
    expect(report.lateStarts).toEqual([]);
    expect(report.wrongStatus).toEqual([]);
    expect(report.wrongAttempts).toEqual([]);
  }, size.timeoutMs + 60_000);
});
