// The final step: prints what transform computed for this run.
const fs = require('node:fs');
const path = require('node:path');
const { runDir } = require('./output');

const dir = runDir();
const { shards, rows, total } = JSON.parse(fs.readFileSync(path.join(dir, 'transform.json'), 'utf8'));
console.log(`report for ${process.env.TICKRUN_WORKFLOW || 'local-etl'} run ${process.env.TICKRUN_RUN_ID || 'manual'}: ${rows} rows from ${shards} shards, total ${total} (in ${dir})`);
