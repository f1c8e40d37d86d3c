// The join: reads every extract shard of this run and sums them into one file.
const fs = require('node:fs');
const path = require('node:path');
const { runDir } = require('./output');

const dir = runDir();
const shards = fs.readdirSync(dir).filter((name) => /^extract-\d+\.json$/.test(name)).sort();
const rows = shards.flatMap((name) => JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')));
const total = rows.reduce((sum, row) => sum + row.amount, 0);
fs.writeFileSync(path.join(dir, 'transform.json'), JSON.stringify({ shards: shards.length, rows: rows.length, total }));
console.log(`transform: ${shards.length} shards, ${rows.length} rows, total ${total}`);
