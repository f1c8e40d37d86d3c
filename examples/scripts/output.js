// Where the example scripts keep their files: one folder per run, outside the checkout.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** The current run's folder, created if needed. Run by hand (no TICKRUN_RUN_ID), it is "manual". */
function runDir() {
  const root = process.env.EXAMPLE_OUTPUT_DIR || path.join(os.tmpdir(), 'tickrun-example');
  const run = (process.env.TICKRUN_RUN_ID || 'manual').replace(/[^A-Za-z0-9_-]/g, '_');
  const dir = path.join(root, run);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** The run's --param values (TICKRUN_PARAMS, one JSON object). */
function params() {
  return JSON.parse(process.env.TICKRUN_PARAMS || '{}');
}

module.exports = { runDir, params };
