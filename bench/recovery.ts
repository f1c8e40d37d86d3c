/**
 * Row 13: issue 15's bad day. The chaos recovery workload (test/chaos/recovery.ts: 20 runs of 50 → 50,
 * 6 tick processes at their defaults) without faults, then with 10% of Cloud Run calls refused, failed,
 * reset or hung past their deadline, 5% of runJob answers lost and a tick SIGKILLed every ~15 s: the time
 * from the trigger to every run ended, side by side.
 *
 * Each phase starts a test emulator of its own in the bench process instead of using the bench's thread:
 * fault plans, random execution durations and the count of starts per attempt are the test emulator's
 * interface, and the clients measured here are the tick processes, so an emulator on this thread takes
 * no turn from them.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { Pool } from 'pg';
import { migrate } from '../shared/migrate';
import { FULL, runRecovery, type RecoverySetup } from '../test/chaos/recovery';
import { round, type Bench, type Measured } from './common';

const SEED = 1;

/** A fresh migrated database on the bench's Postgres for each phase, dropped after it. */
function setupFor(bench: Bench): RecoverySetup {
  const base = bench.env.DATABASE_URL;
  return {
    cli: path.resolve('bin', 'tickrun.js'),
    async freshDatabase() {
      const name = `recovery_${crypto.randomBytes(4).toString('hex')}`;
      await bench.pool.query(`create database ${name}`);
      const url = base.replace(/\/[^/]+$/, `/${name}`);
      const pool = new Pool({ connectionString: url, max: 5 });
      pool.on('error', () => {});
      await migrate(pool);
      return {
        url,
        pool,
        async drop() {
          await pool.end();
          await bench.pool.query(`drop database if exists ${name} with (force)`);
        },
      };
    },
  };
}

export async function measureRecovery(bench: Bench): Promise<Measured> {
  // --quick gives the faulty phase 3 minutes instead of 10.
  const size = { ...FULL, timeoutMs: bench.quick ? 180_000 : FULL.timeoutMs };
  const report = await runRecovery(size, SEED, setupFor(bench));
  const { clean, faulty, ratio } = report;
  const time = (ms: number | undefined, timeoutMs: number) => (ms === undefined ? `not finished after ${timeoutMs / 1000} s` : `${round(ms / 1000)} s`);
  const duplicates = clean.duplicates + faulty.duplicates;
  const lost = clean.lost + faulty.lost;
  const met = ratio !== undefined && ratio <= 3 && duplicates === 0 && lost === 0;
  const faults = Object.entries(faulty.injected).filter(([, n]) => n! > 0);
  return {
    figures: { seed: SEED, size, cleanMs: clean.ms, faultyMs: faulty.ms, ratio: ratio && round(ratio, 2), duplicates, lost, kills: faulty.kills, injected: faulty.injected, leftOver: faulty.leftOver ?? clean.leftOver, line: report.line },
    row: {
      scenario: `13. finish time of the chaos workload (${size.runs} runs of ${size.fanOut} → ${size.fanOut}, ${size.tickProcesses} ticks) with faults vs without, same run`,
      ours: `with faults: ${time(faulty.ms, faulty.timeoutMs)}${ratio !== undefined ? ` (${round(ratio, 2)}× without)` : ''}; ${duplicates} duplicates, ${faulty.leftOver ? `${lost} tasks unfinished` : `${lost} lost`}, ${faulty.kills} ticks killed, faults: ${faults.map(([kind, n]) => `${n} ${kind}`).join(', ')}${faulty.leftOver ? `; ${faulty.leftOver}` : ''}`,
      note: 'defaults, tick --budget 20s replaced when it ends; 10% of calls 429/503/500/reset/hang, 5% of runJob answers lost, a tick SIGKILLed every ~15 s',
      baseline: `without faults: ${time(clean.ms, clean.timeoutMs)}`,
      target: `with faults ≤ 3× without, 0 duplicates, 0 lost: ${met ? 'met' : 'NOT met'}`,
    },
  };
}
