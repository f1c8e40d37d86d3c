import fs from 'node:fs';

/** Stops the test Postgres and removes its data. */
export default async function globalTeardown(): Promise<void> {
  const state = (globalThis as any).__tickrunTestPg;
  if (!state) return;
  await state.db.stop();
  fs.rmSync(state.dir, { recursive: true, force: true });
}
