import { spawnSync, type SpawnSyncOptionsWithStringEncoding, type SpawnSyncReturns } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseHcl } from '@cdktf/hcl2json';
import { Pool } from 'pg';
import { copyCheckout } from '../helpers/checkout';
import { bashScriptOf, commandsOf, readBuild, stepOf, substitute, type Build, type Step } from '../helpers/cloudbuild';
import { imageContents } from '../helpers/cloudbuildImages';

// The deploy build gets nothing but the release the ci build published: no checkout, no node_modules,
// no npm. Here the ci build's own pack script packs this checkout, the two objects its publish step
// uploads are put in an empty folder (what the deploy build's fetch downloads), and the deploy build's
// own steps run there, against a fresh database of the test Postgres.

const ROOT = path.resolve(__dirname, '../..');
const COMMIT = 'a'.repeat(40);

/** Cloud Build's substitutions for a build: the file's defaults, then the built-ins and `given`. */
function substitutionsOf(build: Build, given: Record<string, string>): Record<string, string> {
  const values: Record<string, string> = { PROJECT_ID: 'test-project', BUILD_ID: 'b-1', PROJECT_NUMBER: '1', LOCATION: 'us-central1', ...given };
  // dynamicSubstitutions: a default may name a built-in or an earlier substitution.
  for (const [name, value] of Object.entries(build.substitutions ?? {})) if (!(name in given)) values[name] = substitute(value, values);
  return values;
}

/** Runs one step here as Cloud Build would in /workspace: its programs, its env, substituted. */
function runStep(build: Build, id: string, cwd: string, given: Record<string, string>, extraEnv: Record<string, string> = {}): SpawnSyncReturns<string> {
  const step: Step = stepOf(build, id);
  const values = substitutionsOf(build, given);
  const env: Record<string, string> = { PATH: process.env.PATH!, ...extraEnv };
  for (const e of step.env ?? []) env[e.slice(0, e.indexOf('='))] = substitute(e.slice(e.indexOf('=') + 1), values);
  const script = bashScriptOf(step);
  // stdin closed: bash started with a socket as stdin takes itself for a remote shell and reads ~/.bashrc.
  const options: SpawnSyncOptionsWithStringEncoding = { cwd, env, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] };
  if (script !== null) return spawnSync('bash', [...step.args!.slice(0, step.args!.indexOf('-c')), '-c', substitute(script, values)], options);
  const [program, ...args] = commandsOf(step, imageContents(step.name).entrypoint)[0].map((w) => substitute(w, values));
  return spawnSync(program, args, options);
}

// copyCheckout gives the checkout as the ci build has it when it packs: the source (no .git, which a
// build's source need not have, no node_modules) with the bundles the build step made.

describe('a release, packed by the ci build and deployed by the deploy build', () => {
  const ci = readBuild('cloudbuild.yaml');
  const deploy = readBuild('cloudbuild.deploy.yaml');
  const admin = new Pool({ connectionString: process.env.TICKRUN_TEST_PG_URL, max: 1 });
  admin.on('error', () => {});
  const database = `release_${crypto.randomBytes(4).toString('hex')}`;
  // A deployment name of its own, so the tick's IAM user the grant step names is this file's role.
  const name = `tr${crypto.randomBytes(4).toString('hex')}`;
  const tickUser = `${name}-tick@test-project.iam`;
  let workspace: string;
  let published: string[];
  let target: string;
  let databaseUrl: string;

  beforeAll(async () => {
    workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-ci-'));
    target = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-deploy-'));
    copyCheckout(ROOT, workspace);
    // A user's workflows, where the deploy build looks for them.
    fs.mkdirSync(path.join(workspace, 'workflows'));
    fs.copyFileSync(path.join(ROOT, 'examples/local-etl.yaml'), path.join(workspace, 'workflows/local-etl.yaml'));
    const pack = runStep(ci, 'pack', workspace, { COMMIT_SHA: COMMIT });
    expect([pack.status, pack.stderr]).toEqual([0, '']);
    // What the publish step uploads: each `gcloud storage cp` source, in its order.
    published = commandsOf(stepOf(ci, 'publish'), null)
      .filter((w) => w[0] === 'gcloud')
      .map((w) => w.slice(3).find((a) => !a.startsWith('-') && !a.startsWith('gs:'))!);
    for (const f of published) fs.copyFileSync(path.join(workspace, f), path.join(target, path.basename(f)));
    await admin.query(`create database ${database}`);
    await admin.query(`create role "${tickUser}" login`);
    databaseUrl = process.env.TICKRUN_TEST_PG_URL!.replace(/\/tickrun$/, `/${database}`);
  });

  afterAll(async () => {
    await admin.query(`drop database if exists ${database} with (force)`);
    await admin.query(`drop owned by "${tickUser}"`).catch(() => {});
    await admin.query(`drop role if exists "${tickUser}"`);
    await admin.end();
    for (const dir of [workspace, target]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is two objects, the archive and its checksums, and the checksums are uploaded last', () => {
    expect(published.map((f) => path.basename(f))).toEqual(['release.tar.gz', 'SHA256SUMS']);
  });

  it('unpacks, after its checksums are checked, into a folder with no node_modules', () => {
    const r = runStep(deploy, 'unpack', target, { _RELEASE: COMMIT });
    expect([r.status, r.stderr]).toEqual([0, '']);
    for (const f of ['package.json', 'dist/tick.js', 'dist/cli.js', 'migrations/0001_schema.sql', 'terraform/function.tf', 'workflows/local-etl.yaml']) {
      expect([f, fs.existsSync(path.join(target, f))]).toEqual([f, true]);
    }
    expect(fs.existsSync(path.join(target, 'node_modules'))).toBe(false);
    // Nor any above it: what the CLI needs must be in the bundle.
    const pg = spawnSync(process.execPath, ['-e', "require.resolve('pg')"], { cwd: target, env: { PATH: process.env.PATH }, encoding: 'utf8' });
    expect([pg.status, pg.stderr]).toEqual([1, expect.stringContaining("Cannot find module 'pg'")]);
  });

  it("migrates an empty database with the release's CLI and migrations alone", () => {
    const r = runStep(deploy, 'migrate', target, { _RELEASE: COMMIT }, { DATABASE_URL: databaseUrl });
    const all = fs.readdirSync(path.join(ROOT, 'migrations')).filter((f) => f.endsWith('.sql')).map((f) => f.replace(/\.sql$/, '')).sort();
    expect([r.status, r.stderr, r.stdout.trim()]).toEqual([0, '', `applied ${all.join(', ')}`]);
  });

  it('reaches Cloud SQL with the connector bundled in its CLI: without credentials it asks for them, not for a module', () => {
    // The step's own env (INSTANCE_CONNECTION_NAME, DB_USER, DB_NAME), no DATABASE_URL; no credentials
    // file under HOME and a metadata server that refuses, so the connector fails where it needs a token.
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-nocreds-'));
    try {
      const r = runStep(deploy, 'migrate', target, { _RELEASE: COMMIT }, { HOME: home, GCE_METADATA_HOST: '127.0.0.1:9' });
      expect([r.status, r.stderr]).toEqual([1, expect.stringContaining('Could not load the default credentials')]);
      expect(r.stderr).not.toMatch(/Cannot find module/);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it("grants the tick's database user its tables", async () => {
    const r = runStep(deploy, 'grant', target, { _RELEASE: COMMIT, _NAME: name }, { DATABASE_URL: databaseUrl });
    expect([r.status, r.stderr, r.stdout.trim()]).toEqual([0, '', `granted "${tickUser}" reading and writing of tickrun's tables`]);
    const db = new Pool({ connectionString: databaseUrl, max: 1 });
    try {
      const { rows } = await db.query(`select has_table_privilege($1, 'tasks', 'update') as ok`, [tickUser]);
      expect(rows).toEqual([{ ok: true }]);
    } finally {
      await db.end();
    }
  });

  it("applies the release's workflows", () => {
    const r = runStep(deploy, 'apply-workflows', target, { _RELEASE: COMMIT }, { DATABASE_URL: databaseUrl });
    expect([r.status, r.stderr, r.stdout.trim()]).toEqual([0, '', 'created local-etl (version 1)']);
  });

  it('holds every file the terraform configuration reads', async () => {
    const read: string[] = [];
    for (const f of fs.readdirSync(path.join(target, 'terraform')).filter((n) => n.endsWith('.tf'))) {
      const text = fs.readFileSync(path.join(target, 'terraform', f), 'utf8');
      await parseHcl(f, text);
      for (const m of text.matchAll(/file\("\$\{path\.module\}\/([^"]+)"\)/g)) read.push(m[1]);
    }
    expect(read).toEqual(expect.arrayContaining(['../package.json', '../dist/tick.js']));
    for (const f of read) expect([f, fs.existsSync(path.join(target, 'terraform', f))]).toEqual([f, true]);
  });

  it('is refused when the archive does not match its checksums, and nothing is unpacked', () => {
    const bad = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-bad-'));
    try {
      for (const f of ['release.tar.gz', 'SHA256SUMS']) fs.copyFileSync(path.join(target, f), path.join(bad, f));
      const archive = fs.readFileSync(path.join(bad, 'release.tar.gz'));
      archive[archive.length - 1] ^= 0xff;
      fs.writeFileSync(path.join(bad, 'release.tar.gz'), archive);
      const r = runStep(deploy, 'unpack', bad, { _RELEASE: COMMIT });
      expect([r.status === 0, r.stderr]).toEqual([false, expect.stringContaining('release.tar.gz')]);
      expect(fs.readdirSync(bad).sort()).toEqual(['SHA256SUMS', 'release.tar.gz']);
    } finally {
      fs.rmSync(bad, { recursive: true, force: true });
    }
  });
});
