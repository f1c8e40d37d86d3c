import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadModule, roleList, strings, type Block, type Module } from '../helpers/terraformModule';

// The permission matrix: every Cloud Run and Cloud SQL call the tick, the dashboard and the pipelines make
// (read from the code), the permission each needs and the resource it is checked on, against what
// terraform/ and terraform/bootstrap/ grant, roles expanded from the table of predefined roles in
// test/fixtures/iam/predefined-roles.json (its source is named there) and the bootstrap's custom roles.
// Both ways: every call is allowed, and no identity holds a permission (in SCOPE) it never uses.

const ROOT = path.resolve(__dirname, '../..');
const TABLE = JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/iam/predefined-roles.json'), 'utf8')) as {
  source: string;
  roles: Record<string, { page: string; permissions: string[] }>;
};

/**
 * Where a permission is held or needed: the project, tickrun's Cloud SQL instance (a project grant
 * narrowed by a condition on resource.name), the Cloud Run jobs of jobs.tf, the functions' services, a
 * service account (jobRuntime: the shared jobs account and the jobs' own accounts of this project;
 * foreignJobRuntime: a job's account of another project), a bucket.
 */
type Target = string;

/** A grant made on `on` covers a need on `target`: the same resource, or anything in the project. */
const covers = (on: Target, target: Target) => on === target || (on === 'project' && target !== 'account:foreignJobRuntime');

/**
 * A permission held on `on` is used by a need on `target` when the grant is no wider than the use: a
 * project-wide grant must be needed project-wide (creating a resource, or acting on every one of a kind),
 * not for one bucket or one instance that a narrower grant could name.
 */
const usedBy = (on: Target, target: Target) => on === target || (on !== 'project' && covers(on, target));

/**
 * The permissions this test holds identities to, both ways. Left out: what nearly every predefined role
 * carries to find its resources (resourcemanager.projects.get/list), logging (the builds' logs), and the
 * parts of the storage object roles no pipeline step touches (folders, managed folders, multipart uploads,
 * object contexts), which come only with those roles.
 */
const inScope = (p: string) =>
  /^(run|cloudsql|cloudfunctions|cloudscheduler)\./.test(p) ||
  p.startsWith('iam.serviceAccounts.') ||
  p.startsWith('storage.buckets.') ||
  /^storage\.objects\.(create|get|list|delete|update|getIamPolicy|setIamPolicy)$/.test(p) ||
  /^resourcemanager\.projects\.(get|set)IamPolicy$/.test(p);

// ---- The calls, from the code ---------------------------------------------------------------------------

/**
 * Cloud Run Admin API v2 RPCs and what each needs (https://cloud.google.com/run/docs/reference/iam/permissions;
 * jobs.run with overrides: https://cloud.google.com/run/docs/reference/rest/v1/namespaces.jobs/run needs
 * run.jobs.run, and run.jobs.runWithOverrides for the overrides, and
 * https://cloud.google.com/run/docs/execute/jobs#override-job-configuration actAs on the job's account).
 * Permissions on a job's executions are checked on the job.
 */
const RPC_PERMISSIONS: Record<string, Array<[Target, string]>> = {
  runJob: [['job', 'run.jobs.run'], ['job', 'run.jobs.runWithOverrides'], ['account:jobRuntime', 'iam.serviceAccounts.actAs'], ['account:foreignJobRuntime', 'iam.serviceAccounts.actAs']],
  getJob: [['job', 'run.jobs.get']],
  getExecution: [['job', 'run.executions.get']],
  listExecutions: [['job', 'run.executions.list']],
  cancelExecution: [['job', 'run.executions.cancel']],
  // An array execution's tasks (https://cloud.google.com/run/docs/reference/iam/permissions: run.tasks.list).
  listTasks: [['job', 'run.tasks.list']],
};

/** The RPC names of the three clients the executor builds, from the client library's own method table. */
function cloudRunRpcs(): string[] {
  const config = (file: string, service: string) =>
    Object.keys(JSON.parse(readFileSync(path.join(ROOT, 'node_modules/@google-cloud/run/build/src/v2', file), 'utf8')).interfaces[service].methods);
  return [...config('jobs_client_config.json', 'google.cloud.run.v2.Jobs'), ...config('executions_client_config.json', 'google.cloud.run.v2.Executions'),
    ...config('tasks_client_config.json', 'google.cloud.run.v2.Tasks')].map((m) => m[0].toLowerCase() + m.slice(1));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every Cloud Run RPC the tick's and the dashboard's code calls (shared/ and functions/). */
function cloudRunCalls(): string[] {
  const rpcs = cloudRunRpcs();
  const text = [...sourceFiles(path.join(ROOT, 'shared')), ...sourceFiles(path.join(ROOT, 'functions'))].map((f) => readFileSync(f, 'utf8')).join('\n');
  return rpcs.filter((rpc) => new RegExp(`\\.${rpc}\\(`).test(text));
}

/**
 * The Cloud SQL connector's Admin API calls (its SQLAdminFetcher) and what each needs
 * (https://cloud.google.com/sql/docs/postgres/iam-roles: connect.get reads the instance,
 * generateEphemeralCert needs cloudsql.instances.connect), plus the IAM database login when shared/db.ts
 * uses IAM authentication (https://cloud.google.com/sql/docs/postgres/iam-authentication: cloudsql.instances.login).
 */
const CONNECTOR_PERMISSIONS: Record<string, string> = { get: 'cloudsql.instances.get', generateEphemeralCert: 'cloudsql.instances.connect' };

function connectorCalls(): string[] {
  const fetcher = readFileSync(path.join(ROOT, 'node_modules/@google-cloud/cloud-sql-connector/dist/cjs/sqladmin-fetcher.js'), 'utf8');
  return [...new Set([...fetcher.matchAll(/this\.client\.connect\.(\w+)\(/g)].map((m) => m[1]))];
}

function connectorNeeds(): Array<[Target, string]> {
  const needs = connectorCalls().map((call): [Target, string] => {
    const permission = CONNECTOR_PERMISSIONS[call];
    if (!permission) throw new Error(`the connector calls connect.${call}, which CONNECTOR_PERMISSIONS does not know: add its permission`);
    return ['instance', permission];
  });
  if (/authType:\s*AuthTypes\.IAM/.test(readFileSync(path.join(ROOT, 'shared/db.ts'), 'utf8'))) needs.push(['instance', 'cloudsql.instances.login']);
  return needs;
}

/**
 * What Terraform calls to manage each resource type of terraform/ (create, read, update, delete; the
 * Cloud Run and Cloud Functions resources wait on their operation). The IAM resources are needed on the
 * resource whose policy they change, computed from the grants themselves (deployNeeds).
 */
const RESOURCE_PERMISSIONS: Record<string, string[]> = {
  google_sql_database_instance: ['create', 'get', 'update', 'delete'].map((v) => `cloudsql.instances.${v}`),
  google_sql_database: ['create', 'get', 'update', 'delete'].map((v) => `cloudsql.databases.${v}`),
  google_sql_user: ['create', 'get', 'list', 'update', 'delete'].map((v) => `cloudsql.users.${v}`),
  // The functions' source bucket: created on the project, then read, changed, emptied (force_destroy) and
  // deleted as that one bucket; its objects written as objects of it.
  google_storage_bucket: ['storage.buckets.create', ...['get', 'update', 'delete'].map((v) => `bucket:source ${`storage.buckets.${v}`}`), 'bucket:source storage.objects.list', 'bucket:source storage.objects.delete'],
  google_storage_bucket_object: ['create', 'get', 'delete'].map((v) => `bucket:source storage.objects.${v}`),
  google_cloudfunctions2_function: [...['create', 'get', 'update', 'delete'].map((v) => `cloudfunctions.functions.${v}`), 'cloudfunctions.operations.get'],
  google_cloud_run_v2_service_iam_binding: ['run.services.getIamPolicy', 'run.services.setIamPolicy'],
  google_cloud_run_v2_job: [...['create', 'get', 'update', 'delete'].map((v) => `run.jobs.${v}`), 'run.operations.get'],
  google_cloud_run_v2_job_iam_member: ['run.jobs.getIamPolicy', 'run.jobs.setIamPolicy'],
  google_cloud_scheduler_job: ['create', 'get', 'update', 'delete', 'pause', 'enable'].map((v) => `cloudscheduler.jobs.${v}`),
  google_project_iam_member: ['resourcemanager.projects.getIamPolicy', 'resourcemanager.projects.setIamPolicy'],
  // terraform/bootstrap/ makes the accounts now; known here should one come back to terraform/.
  google_service_account: ['create', 'get', 'update', 'delete'].map((v) => `iam.serviceAccounts.${v}`),
  // On the accounts whose policy it changes (deployNeeds).
  google_service_account_iam_member: [],
  // Nothing in the cloud.
  terraform_data: [],
};

// ---- The grants, from the Terraform --------------------------------------------------------------------

interface Held {
  identity: string;
  on: Target;
  role: string;
  permission: string;
  grant: string;
}

let main: Module;
let boot: Module;
beforeAll(async () => {
  [main, boot] = await Promise.all([loadModule(path.join(ROOT, 'terraform')), loadModule(path.join(ROOT, 'terraform/bootstrap'))]);
});

/** The tickrun identity a member expression names (google_service_account.X.member, local.members.X). */
function identityOf(member: unknown): string | undefined {
  return /(?:google_service_account\.|local\.members\.)([a-z]+)/.exec(String(member))?.[1];
}

/** Accounts named in an expression: jobs (and the jobs' own accounts) count as jobRuntime. */
function accountsIn(expression: unknown): Target[] {
  const text = strings(expression).join(' ');
  const named = [...text.matchAll(/(?:google_service_account\.|local\.accounts\.)([a-z]+)/g)].map((m) => (m[1] === 'jobs' ? 'jobRuntime' : m[1]));
  if (/job_runtime_accounts|own_job_accounts/.test(text)) named.push('jobRuntime');
  if (/foreign_job_accounts|each\.value\.service_account/.test(text)) named.push('foreignJobRuntime');
  return [...new Set(named)].map((a) => `account:${a}`);
}

function targetsOf(type: string, block: Block): Target[] {
  switch (type) {
    case 'google_project_iam_member': {
      // A condition on resource.name narrows a project grant to tickrun's instance or one of its buckets.
      const condition = block.condition?.[0]?.expression ?? '';
      const bucket = /projects\/_\/buckets\/\$\{var\.project_id\}-\$\{var\.name\}-([a-z]+)/.exec(condition)?.[1];
      if (bucket) return [`bucket:${bucket}`];
      return [/resource\.name == /.test(condition) && /instance/.test(condition) ? 'instance' : 'project'];
    }
    case 'google_cloud_run_v2_job_iam_member':
      return ['job'];
    case 'google_cloud_run_v2_service_iam_binding':
      return ['service'];
    case 'google_service_account_iam_member':
      return accountsIn([block.service_account_id, block.for_each]);
    case 'google_storage_bucket_iam_member': {
      const bucket = String(block.bucket);
      const name = /google_storage_bucket\.([a-z_]+)\.name/.exec(bucket)?.[1] ?? (/-tfstate$/.test(bucket) ? 'state' : bucket);
      return [`bucket:${name}`];
    }
    default:
      throw new Error(`the matrix does not know where a ${type} grants: add it to targetsOf`);
  }
}

/** The roles a grant gives: a literal, the list its for_each iterates, or a custom role of the bootstrap. */
function rolesOf(block: Block, mod: Module): string[] {
  const role = String(block.role);
  const custom = /(?:local\.role_id\.|custom_role\}\.)(\w+)/.exec(role);
  if (custom) return [`custom:${custom[1]}`];
  if (role !== '${each.value}') return roleList(role);
  const local = /local\.([a-z_]+)/.exec(block.for_each)?.[1];
  return roleList(local ? mod.locals[local] : block.for_each);
}

function permissionsOf(role: string): string[] | undefined {
  if (role.startsWith('custom:')) {
    const def = boot.locals.custom_roles?.[role.slice('custom:'.length)];
    return def ? strings(def.permissions).flatMap((s) => [...s.matchAll(/"?([a-z]+\.[A-Za-z]+\.[A-Za-z]+)"?/g)].map((m) => m[1])) : undefined;
  }
  return TABLE.roles[role]?.permissions;
}

const unknownRoles = new Set<string>();

/** Every permission each tickrun identity holds, and where. */
function held(): Held[] {
  return [main, boot].flatMap((mod) =>
    Object.entries(mod.resources)
      .filter(([type]) => /_iam_(member|binding)$/.test(type))
      .flatMap(([type, byName]) =>
        Object.entries(byName).flatMap(([name, block]) => {
          const identities = [block.member, ...[block.members ?? []].flat()].map(identityOf).filter((i): i is string => !!i);
          if (!identities.length) return [];
          return rolesOf(block, mod).flatMap((role) => {
            const permissions = permissionsOf(role);
            if (!permissions) {
              unknownRoles.add(role);
              return [];
            }
            return identities.flatMap((identity) =>
              targetsOf(type, block).flatMap((on) => permissions.map((permission) => ({ identity, on, role, permission, grant: `${type}.${name}` }))),
            );
          });
        }),
      ),
  );
}

// ---- What each identity needs --------------------------------------------------------------------------

function tickNeeds(): Array<[Target, string]> {
  return [...cloudRunCalls().flatMap((call) => RPC_PERMISSIONS[call] ?? []), ...connectorNeeds()];
}

/**
 * The deploy pipeline: migrate, grant and apply through the connector; the release it fetches and the
 * state it keeps; and terraform/ applied: each resource type managed, each account attached to a
 * function, a job or the scheduler (actAs), each account whose policy terraform/ changes.
 */
function deployNeeds(): Array<[Target, string]> {
  const needs: Array<[Target, string]> = [...connectorNeeds()];
  needs.push(['bucket:releases', 'storage.objects.get'], ['bucket:releases', 'storage.objects.list']);
  for (const v of ['create', 'get', 'list', 'delete']) needs.push(['bucket:state', `storage.objects.${v}`]);
  for (const type of Object.keys(main.resources)) {
    const permissions = RESOURCE_PERMISSIONS[type];
    if (!permissions) throw new Error(`terraform/ manages ${type}, which RESOURCE_PERMISSIONS does not know: add what Terraform needs to manage it, and grant it to the deploy account`);
    // "TARGET permission" where the resource is narrower than the project.
    for (const p of permissions) needs.push(p.includes(' ') ? (p.split(' ') as [Target, string]) : ['project', p]);
  }
  for (const block of Object.values(main.resources.google_service_account_iam_member ?? {})) {
    for (const account of accountsIn([block.service_account_id, block.for_each])) {
      needs.push([account, 'iam.serviceAccounts.getIamPolicy'], [account, 'iam.serviceAccounts.setIamPolicy']);
    }
  }
  const attached = [
    ...Object.values(main.resources.google_cloudfunctions2_function ?? {}).flatMap((f) => [f.service_config?.[0]?.service_account_email, f.build_config?.[0]?.service_account]),
    ...Object.values(main.resources.google_cloud_scheduler_job ?? {}).map((j) => j.http_target?.[0]?.oidc_token?.[0]?.service_account_email),
    ...Object.values(main.resources.google_cloud_run_v2_job ?? {}).map((j) => j.template?.[0]?.template?.[0]?.service_account),
  ];
  for (const account of accountsIn(attached)) needs.push([account, 'iam.serviceAccounts.actAs']);
  return needs;
}

/** The ci pipeline publishes the release; it calls nothing else of Cloud Run, Cloud SQL or IAM. */
const ciNeeds = (): Array<[Target, string]> => [['bucket:releases', 'storage.objects.create']];

const NEEDS: Record<string, () => Array<[Target, string]>> = { tick: tickNeeds, deploy: deployNeeds, ci: ciNeeds };

/**
 * Known over-grants, each with why: on a job's account of another project only a predefined role can be
 * granted (a custom role of this project cannot), and roles/iam.serviceAccountUser also reads and lists.
 */
const ALLOWED_UNUSED: Array<{ on: Target; role: string; permissions: string[] }> = [
  { on: 'account:foreignJobRuntime', role: 'roles/iam.serviceAccountUser', permissions: ['iam.serviceAccounts.get', 'iam.serviceAccounts.list'] },
];

// ---- The tests -----------------------------------------------------------------------------------------

describe('the roles table', () => {
  it('names its source, and each role its page', () => {
    expect(TABLE.source).toMatch(/cloud\.google\.com\/iam\/docs\/roles-permissions/);
    for (const [role, entry] of Object.entries(TABLE.roles)) {
      expect([role, entry.page]).toEqual([role, expect.stringMatching(/^https:\/\/cloud\.google\.com\/iam\/docs\/roles-permissions\/[a-z]+$/)]);
      expect(entry.permissions.length).toBeGreaterThan(0);
    }
  });

  it('holds every predefined role the configuration grants', () => {
    held();
    expect([...unknownRoles].sort()).toEqual([]);
  });
});

describe('the calls', () => {
  it('the tick and the dashboard make only Cloud Run calls whose permissions are known', () => {
    const calls = cloudRunCalls();
    expect(calls).toEqual(expect.arrayContaining(['runJob', 'getExecution', 'listExecutions', 'cancelExecution', 'listTasks']));
    expect(calls.filter((c) => !RPC_PERMISSIONS[c])).toEqual([]);
    // Run with overrides: the call that needs run.jobs.runWithOverrides and actAs.
    expect(readFileSync(path.join(ROOT, 'shared/executors/cloudRun.ts'), 'utf8')).toMatch(/runJob\(\{ name, overrides:/);
  });

  it("the connector's Admin API calls are read from its source, and each is known", () => {
    expect(connectorCalls().sort()).toEqual(['generateEphemeralCert', 'get']);
    expect(connectorNeeds().map(([, p]) => p).sort()).toEqual(['cloudsql.instances.connect', 'cloudsql.instances.get', 'cloudsql.instances.login']);
  });

  it('the dashboard runs as the tick, so its calls are the tick\'s', () => {
    expect(main.resources.google_cloudfunctions2_function.dashboard.service_config[0].service_account_email).toBe(
      main.resources.google_cloudfunctions2_function.tick.service_config[0].service_account_email,
    );
  });

  it("the bootstrap's bucket conditions name the buckets terraform/ creates", () => {
    expect(main.resources.google_storage_bucket.source.name).toBe('${var.project_id}-${var.name}-source');
  });

  it("the bootstrap's instance condition names the instance terraform/ creates", () => {
    expect(main.resources.google_sql_database_instance.tickrun.name).toBe('${var.name}');
    expect(boot.locals.instance_resource_name).toBe('projects/${var.project_id}/instances/${var.name}');
  });
});

describe.each(['tick', 'deploy', 'ci'])('%s', (identity) => {
  it('is granted every permission its calls need, on the resource they touch', () => {
    const mine = held().filter((h) => h.identity === identity);
    const missing = NEEDS[identity]()
      .filter(([target, permission]) => !mine.some((h) => h.permission === permission && covers(h.on, target)))
      .map(([target, permission]) => `${permission} on ${target}`);
    expect([...new Set(missing)].sort()).toEqual([]);
  });

  it('holds no permission it never uses, nor one wider than where it uses it', () => {
    const needs = NEEDS[identity]();
    const unused = held()
      .filter((h) => h.identity === identity && inScope(h.permission))
      .filter((h) => !needs.some(([target, permission]) => permission === h.permission && usedBy(h.on, target)))
      .filter((h) => !ALLOWED_UNUSED.some((a) => a.on === h.on && a.role === h.role && a.permissions.includes(h.permission)))
      .map((h) => `${h.permission} on ${h.on} (${h.role}, ${h.grant})`);
    expect([...new Set(unused)].sort()).toEqual([]);
  });
});
