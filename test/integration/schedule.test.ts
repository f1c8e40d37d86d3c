import { Pool, type QueryConfig } from 'pg';
import { countingDb } from '../../shared/db';
import { listRuns } from '../../shared/model/runs';
import { setSchedulePaused } from '../../shared/operator/pause';
import { scheduleDueRuns } from '../../shared/steps/schedule';
import { tick, type TickDeps } from '../../shared/tick';
import { applyWorkflows } from '../../shared/workflows/apply';
import { parseWorkflow } from '../../shared/workflows/parse';
import type { CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { emulatorHarness, type Harness } from '../helpers/harness';
import { startTcpProxy } from '../helpers/tcpProxy';

const at = (iso: string) => new Date(iso);
const plus = (d: Date, ms: number) => new Date(d.getTime() + ms);

describe('schedules: one run per slot, exactly once', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  emulatorHarness((started) => ({ emu, h } = started));
  // Each test's clock jumps to its own dates: earlier tests' schedules would owe runs for the gap.
  afterEach(() => h.db.pool.query('update workflows set paused = true'));

  const apply = (yaml: string, now: Date) => applyWorkflows(h.db.pool, [parseWorkflow(yaml, '/w/wf.yaml')], now);
  const scheduled = async (workflow: string) =>
    (await listRuns(h.db.pool, { workflow, limit: 1000 })).map((r) => r.scheduledFor).sort();
  /** The schedule step alone at `now`, as a tick would run it. */
  const scheduleAt = (now: Date) => {
    const ctx = h.context({ clock: () => now });
    return scheduleDueRuns(ctx);
  };

  it('*/1 over 10 simulated minutes, ticks every 7 s, 3 overlapping and 1 dying half-way: exactly 10 runs', async () => {
    const t0 = at('2026-01-05T00:00:30Z');
    await apply(`name: every-minute\nschedule: "*/1 * * * *"\ntasks:\n  a: { job: projects/p/locations/l/jobs/a }\n`, t0);
    let now = t0;
    const deps: TickDeps = { ...h.deps, clock: () => now };
    // A pool whose connection is cut right after the tick has read which slots are due, before it
    // creates their runs: the tick dies half-way through the schedule step.
    const url = new URL(h.db.url);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    url.port = String(proxy.port);
    const dying = new Pool({ connectionString: url.toString(), max: 2 });
    dying.on('error', () => {});
    const query = dying.query.bind(dying) as (q: QueryConfig) => Promise<unknown>;
    (dying as any).query = async (q: QueryConfig) => {
      const result = await query(q);
      if (q.name === 'tickrun_due') proxy.cut();
      return result;
    };
    try {
      for (let step = 0; now < plus(t0, 600_000); step++, now = plus(t0, step * 7000)) {
        // Step 48 (00:06:06) is the first tick after the 00:06 slot: an idle tick would stop at the probe.
        if (step === 48) {
          await expect(tick({ ...deps, pool: dying }, { budgetMs: 0 })).rejects.toThrow();
          proxy.restore();
        } else if (step === 10 || step === 26 || step === 61) {
          await Promise.all([tick(deps, { budgetMs: 0 }), tick(deps, { budgetMs: 0 }), tick(deps, { budgetMs: 0 })]);
        } else {
          await tick(deps, { budgetMs: 0 });
        }
      }
    } finally {
      await dying.end();
      await proxy.close();
    }
    const slots = await scheduled('every-minute');
    expect(slots).toEqual([...Array(10).keys()].map((i) => `2026-01-05T00:${String(i + 1).padStart(2, '0')}:00.000Z`));
    const runs = await listRuns(h.db.pool, { workflow: 'every-minute' });
    expect(runs.every((r) => r.triggeredBy === 'schedule')).toBe(true);
  });

  it('after a 30-minute gap, catchup latest makes the newest missed slot only, catchup all every one', async () => {
    const t0 = at('2026-01-06T10:00:30Z');
    await apply(`name: gap-latest\nschedule: "*/1 * * * *"\ntasks:\n  a: { job: projects/p/locations/l/jobs/a }\n`, t0);
    await apply(`name: gap-all\nschedule: "*/1 * * * *"\ncatchup: all\ntasks:\n  a: { job: projects/p/locations/l/jobs/a }\n`, t0);
    await scheduleAt(plus(t0, 31 * 60_000)); // 10:31:30, after downtime
    expect(await scheduled('gap-latest')).toEqual(['2026-01-06T10:31:00.000Z']);
    const all = await scheduled('gap-all');
    expect(all).toHaveLength(31);
    expect([all[0], all[30]]).toEqual(['2026-01-06T10:01:00.000Z', '2026-01-06T10:31:00.000Z']);
    // Both then go on from the next slot.
    await scheduleAt(at('2026-01-06T10:32:05Z'));
    expect((await scheduled('gap-latest')).at(-1)).toBe('2026-01-06T10:32:00.000Z');
    expect(await scheduled('gap-all')).toHaveLength(32);
  });

  it.each([
    ['spring forward', '30 2 * * *', '2026-03-06T12:00:00Z', ['2026-03-07T07:30:00.000Z', '2026-03-08T07:30:00.000Z', '2026-03-09T06:30:00.000Z']],
    ['fall back', '30 1 * * *', '2026-10-30T12:00:00Z', ['2026-10-31T05:30:00.000Z', '2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']],
  ])('a daily slot in America/New_York runs once a day across %s', async (label, cron, from, expected) => {
    const name = `dst-${label.replace(' ', '-')}`;
    await apply(`name: ${name}\nschedule: "${cron}"\ntimezone: America/New_York\ntasks:\n  a: { job: projects/p/locations/l/jobs/a }\n`, at(from));
    // Ticks every 10 minutes for three days.
    for (let t = at(from); t < plus(at(from), 3 * 86_400_000); t = plus(t, 600_000)) await scheduleAt(t);
    expect(await scheduled(name)).toEqual(expected);
  });

  it('a changed schedule takes effect from its next slot; pause stops it, resume goes on from now; removing it stops it', async () => {
    const t0 = at('2026-01-07T08:00:10Z');
    const wf = (schedule: string) => `name: changing\n${schedule}tasks:\n  a: { job: projects/p/locations/l/jobs/a }\n`;
    await apply(wf('schedule: "0 * * * *"\n'), t0);
    await scheduleAt(at('2026-01-07T09:00:01Z'));
    await apply(wf('schedule: "*/15 * * * *"\n'), at('2026-01-07T09:05:00Z'));
    await scheduleAt(at('2026-01-07T09:15:01Z'));
    expect(await scheduled('changing')).toEqual(['2026-01-07T09:00:00.000Z', '2026-01-07T09:15:00.000Z']);
    await setSchedulePaused(h.db.pool, 'changing', true, at('2026-01-07T09:20:00Z'));
    await scheduleAt(at('2026-01-07T10:01:00Z'));
    expect(await scheduled('changing')).toHaveLength(2);
    const { nextRunAt } = await setSchedulePaused(h.db.pool, 'changing', false, at('2026-01-07T10:01:00Z'));
    expect(nextRunAt).toBe('2026-01-07T10:15:00.000Z');
    await scheduleAt(at('2026-01-07T10:15:01Z'));
    expect((await scheduled('changing')).at(-1)).toBe('2026-01-07T10:15:00.000Z');
    await apply(wf(''), at('2026-01-07T10:20:00Z'));
    await scheduleAt(at('2026-01-07T12:00:00Z'));
    expect(await scheduled('changing')).toHaveLength(3);
    const { rows } = await h.db.pool.query("select next_slot_at from workflows where name = 'changing'");
    expect(rows[0].next_slot_at).toBeNull();
  });

  it('an idle schedule step costs one round trip', async () => {
    const db = countingDb(h.db.pool);
    await scheduleDueRuns({ config: h.config, executors: h.deps.executors, db, clock: () => at('2000-01-01T00:00:00Z') });
    expect(db.roundTrips).toBe(1);
  });
});
