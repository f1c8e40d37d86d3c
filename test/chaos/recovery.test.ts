import path from 'node:path';
import { createTestDatabase } from '../helpers/db';
import { FULL, runRecovery, SMALL } from './recovery';

// Issue 15: the same workload with and without a bad day on the Cloud Run API, in the same run. Recovery
// must cost seconds: with faults at most 3× the time without, nothing started twice, nothing lost, no
// attempt spent on a fault.
//
// `npm run test:chaos` (CHAOS_SIZE=full): issue 15's workload (20 runs of 50 → 50, 6 ticks) over 5
// consecutive seeds from CHAOS_SEED (else a random one). `npm test`: one seed of 8 runs of 20 → 20 on
// 3 ticks with one of them killed, under a minute, giving up once past 3× the clean time. It proves the
// same things at a smaller scale: a fault or a killed tick costs what its recovery costs whatever the
// size, while the clean run still takes its few poll cycles, so recovery that takes minutes fails the
// ratio here too.
// RECOVERY_TRACE=1 prints the tasks not yet ended, and the claims held, every 2 s of each phase.
const full = process.env.CHAOS_SIZE === 'full';
const size = full ? FULL : SMALL;
const first = process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : Math.floor(Math.random() * 2 ** 31);
const seeds = Array.from({ length: full ? 5 : 1 }, (_, i) => first + i);
const setup = { freshDatabase: createTestDatabase, cli: path.resolve(__dirname, '..', '..', 'bin', 'tickrun.js') };

describe(`recovery (${full ? 'full' : 'small'} size: ${size.runs} runs of ${size.fanOut} → ${size.fanOut}, ${size.tickProcesses} ticks)`, () => {
  it.each(seeds)('seed %i: with faults, hangs and killed ticks the workload ends within 3× its time without, nothing started twice or lost, no attempt spent on a fault', async (seed) => {
    const report = await runRecovery(size, seed, setup);
    process.stdout.write(`${report.line}\n`);
    if (report.clean.leftOver || report.faulty.leftOver) throw new Error(report.line);
    expect(report.faulty.kills).toBeGreaterThan(0);
    // Over 2,000 tasks every kind of fault comes; over 80 one kind may not (5% of ~80 runJob calls lost).
    if (full) for (const kind of ['429', '503', '500', 'reset', 'hang', 'lost'] as const) expect(report.faulty.injected[kind]).toBeGreaterThan(0);
    else expect(Object.values(report.faulty.injected).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(report.clean.duplicates + report.faulty.duplicates).toBe(0);
    expect(report.clean.lost + report.faulty.lost).toBe(0);
    expect([...report.clean.wrong, ...report.faulty.wrong]).toEqual([]);
    expect(report.ratio).toBeLessThanOrEqual(3);
  }, 2 * size.timeoutMs + 120_000);
});
