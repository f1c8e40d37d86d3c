import fs from 'node:fs';
import { startCloudRunEmulator } from '../helpers/cloudRunEmulator';
import { createHarness } from '../helpers/harness';
import { migrationNames } from '../../shared/migrate';
import { fixturePath, migrationNumber } from './fixture';
import { recordStatements } from './recorder';
import { runWorkload, workloadEnv } from './workload';

// Run by `npm run record-statements` (scripts/record-statements.js), never by the suite: it writes the
// fixture of the release as the checkout has it, named after its newest migration (migrations/README.md).
it('records the statements of this release', async () => {
  const newest = migrationNames().at(-1)!;
  const emu = await startCloudRunEmulator();
  const h = await createHarness(workloadEnv(emu));
  try {
    const recording = recordStatements(new URL(h.db.url).pathname.slice(1), newest);
    const done = await runWorkload(h, emu).finally(() => recording.stop());
    const fixture = recording.stop();
    // The fixture is only as good as the workload was: each kind of work it stands for happened.
    expect(done).toMatchObject({ runsScheduled: 1, adopted: 1 });
    for (const k of ['retried', 'failed', 'cancelled', 'skipped', 'succeeded', 'released', 'runsCompleted'] as const) expect(done[k]).toBeGreaterThan(0);
    expect(fixture.statements.filter((s) => s.error)).toEqual([]);
    const lines = fixture.statements.map((s) => JSON.stringify(s));
    fs.writeFileSync(fixturePath(migrationNumber(newest)), `{"migration": ${JSON.stringify(fixture.migration)}, "startedAt": ${fixture.startedAt},\n"texts": ${JSON.stringify(fixture.texts, null, 1)},\n"statements": [\n${lines.join(',\n')}\n]}\n`);
  } finally {
    await h.close();
    await emu.stop();
  }
}, 180_000);
