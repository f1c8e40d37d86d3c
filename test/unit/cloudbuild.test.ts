import crypto from 'node:crypto';
import fs, { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseHcl } from '@cdktf/hcl2json';
import { Pool } from 'pg';
import { parse as parseYaml } from 'yaml';
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
import { jestArgsOf, programsTestNeeds, testsJestRuns } from '../helpers/cloudbuild';
import { imageContents } from '../helpers/cloudbuildImages';

const ROOT = path.resolve(__dirname, '../..');

interface Step {
  id?: string;
  name: string;
  entrypoint?: string;
  args?: string[];
  env?: string[];
  waitFor?: string[];
}

const build = parseYaml(readFileSync(path.join(ROOT, 'cloudbuild.yaml'), 'utf8')) as {
  steps: Step[];
  substitutions: Record<string, string>;
  options: Record<string, unknown>;
};
const step = (id: string): Step => {
  const found = build.steps.find((s) => s.id === id);
  if (!found) throw new Error(`cloudbuild.yaml has no step ${id}`);
  return found;
};
const command = (s: Step) => [s.entrypoint ?? '', ...(s.args ?? [])].join(' ');
const envOf = (s: Step) => Object.fromEntries((s.env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));

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

describe('cloudbuild.yaml', () => {
  it('gives every step an id, each its own', () => {
    const ids = build.steps.map((s) => s.id);
    for (const id of ids) expect(id).toMatch(/^[a-z][a-z-]*$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('runs install → build → test → migrate → apply → deploy, one step after the other', () => {
    // The build comes before the tests, which run the bundle (bin/tickrun.js loads dist/cli.js).
    expect(build.steps.map((s) => s.id)).toEqual([
      'install',
      'build',
      'test',
      'migrate',
      'grant',
      'apply-workflows',
      'terraform-init',
      'terraform-plan',
      'terraform-apply',
    ]);
    // Without waitFor, Cloud Build runs each step after all those before it.
    for (const s of build.steps) expect([s.id, s.waitFor]).toEqual([s.id, undefined]);
  });

  it('installs from the lock file, builds the bundle Terraform zips, then tests it without the browser tests', () => {
    expect(command(step('install'))).toMatch(/^npm ci\b/);
    expect(command(step('build'))).toBe('npm run build');
    expect(command(step('test'))).toBe('npx jest --testPathIgnorePatterns=/test/browser/');
  });

  it("migrates and applies workflows on Cloud SQL as the deploy account's IAM user, through the connector", async () => {
    const defaults = await terraformDefaults();
    expect(command(step('migrate'))).toBe('npx tickrun migrate');
    expect(command(step('apply-workflows'))).toMatch(/npx tickrun apply "\$\{_WORKFLOWS\}"/);
    for (const id of ['migrate', 'grant', 'apply-workflows']) {
      const env = envOf(step(id));
      expect(env).toMatchObject({
        INSTANCE_CONNECTION_NAME: '${PROJECT_ID}:${_REGION}:${_NAME}',
        // Terraform names the deploy account ${var.name}-deploy; Cloud SQL drops .gserviceaccount.com.
        DB_USER: '${_NAME}-deploy@${PROJECT_ID}.iam',
        DB_NAME: '${_DB_NAME}',
      });
      expect(env.DATABASE_URL).toBeUndefined();
    }
    expect(command(step('grant'))).toBe('npx tickrun grant ${_NAME}-tick@${PROJECT_ID}.iam');
    // The substitutions' defaults are terraform's.
    expect(build.substitutions).toMatchObject({ _REGION: defaults.region, _NAME: defaults.name, _DB_NAME: defaults.databaseName });
  });

  it('names the accounts the way terraform does', () => {
    const iam = readFileSync(path.join(ROOT, 'terraform/iam.tf'), 'utf8');
    expect(iam).toContain('account_id   = "${var.name}-deploy"');
    expect(iam).toContain('account_id   = "${var.name}-tick"');
  });

  it('keeps the terraform state in the GCS bucket and passes the same names to terraform', () => {
    expect(step('terraform-init').args).toEqual(expect.arrayContaining(['init', '-backend-config=bucket=${_STATE_BUCKET}', '-backend-config=prefix=${_NAME}']));
    expect(step('terraform-plan').args).toEqual(
      expect.arrayContaining(['plan', '-out=tfplan', '-var=project_id=${PROJECT_ID}', '-var=region=${_REGION}', '-var=name=${_NAME}']),
    );
    expect(step('terraform-apply').args).toEqual(expect.arrayContaining(['apply', 'tfplan']));
    for (const id of ['terraform-init', 'terraform-plan', 'terraform-apply']) {
      expect(step(id).name).toMatch(/^hashicorp\/terraform:\d+\.\d+\.\d+$/);
      expect(step(id).args).toContain('-chdir=terraform');
    }
  });

  it('logs to Cloud Logging only, as a build run by a user-specified service account must', () => {
    expect(build.options).toMatchObject({ logging: 'CLOUD_LOGGING_ONLY', dynamicSubstitutions: true });
  });

  it('uses no substitution it does not define', () => {
    const builtIn = new Set(['PROJECT_ID']);
    const text = readFileSync(path.join(ROOT, 'cloudbuild.yaml'), 'utf8').replace(/#.*$/gm, '');
    const used = [...text.matchAll(/\$\{?([A-Z_][A-Z0-9_]*)\}?/g)].map((m) => m[1]);
    for (const name of used) expect([name, builtIn.has(name) || name in build.substitutions]).toEqual([name, true]);
  });
});

describe("cloudbuild.yaml's tests", () => {
  it('run only what their image provides: no test that drives a browser in an image without one', () => {
    const runners = build.steps.filter((s) => jestArgsOf(s) !== null);
    expect(runners.map((s) => s.id)).not.toEqual([]);
    for (const s of runners) {
      const provides = imageContents(s.name).provides;
      const lacking = testsJestRuns(jestArgsOf(s)!).flatMap((file) =>
        programsTestNeeds(file).filter((p) => !provides.includes(p)).map((p) => `${file} needs ${p}, which ${s.name} lacks`),
      );
      expect([s.id, lacking]).toEqual([s.id, []]);
    }
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
