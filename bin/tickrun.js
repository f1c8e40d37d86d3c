#!/usr/bin/env node
// The CLI is bundled by `npm run build` (run by `npm install` through `prepare`).
require('../dist/cli.js').main().then((code) => {
  process.exitCode = code;
});
