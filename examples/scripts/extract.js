// One shard of the extract fan-out: writes a few made-up rows for its TICKRUN_TASK_INDEX.
const fs = require('node:fs');
const path = require('node:path');
const { runDir, params } = require('./output');

const index = Number(process.env.TICKRUN_TASK_INDEX || 0);
const rows = Number(params().rows) || 5;

// About a second of "work", so the fan-out can be watched running side by side.
setTimeout(() => {
  const data = Array.from({ length: rows }, (_, i) => ({ shard: index, id: index * rows + i, amount: (index + 1) * (i + 1) }));
  const file = path.join(runDir(), `extract-${index}.json`);
  fs.writeFileSync(file, JSON.stringify(data));
  console.log(`extract ${index} (attempt ${process.env.TICKRUN_ATTEMPT || 1}): ${rows} rows -> ${file}`);
}, 1000);
