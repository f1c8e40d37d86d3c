#!/usr/bin/env node
// Records what this checkout's tick, operator commands and dashboard send to Postgres during the workload
// of test/compat/workload.ts into migrations/compat/NNNN.json, NNNN its newest migration: the statements a
// later release's migrations must keep working (migrations/README.md). Runs under jest, which starts the
// Postgres and compiles the TypeScript, as the test that replays them does.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const jest = require.resolve('jest/bin/jest', { paths: [root] });
const result = spawnSync(process.execPath, [jest, '--runInBand', '--testMatch', '**/test/compat/record.run.ts', '--', 'test/compat/record.run.ts'], { cwd: root, stdio: 'inherit' });
process.exit(result.status ?? 1);
