import path from 'node:path';
import { loadModule, resourceOf, roleList, strings, type Block, type Module } from '../helpers/terraformModule';

// terraform/bootstrap/ is the root module a project owner applies once: the APIs, every tickrun service
// account, the ci and deploy accounts' grants, the releases bucket and the custom roles. The deploy account
// applies terraform/ and must not be able to widen its own grants, so none of them may live there.

const TERRAFORM = path.resolve(__dirname, '../../terraform');
let main: Module;
let boot: Module;
beforeAll(async () => {
  [main, boot] = await Promise.all([loadModule(TERRAFORM), loadModule(path.join(TERRAFORM, 'bootstrap'))]);
});
const bootResource = (type: string, name: string) => resourceOf(boot, 'terraform/bootstrap/', type, name);

/** Every IAM grant of a module: its resource id, type and block. */
const grantsOf = (mod: Module) =>
  Object.entries(mod.resources)
    .filter(([type]) => /_iam_(member|binding|policy)$/.test(type))
    .flatMap(([type, byName]) => Object.entries(byName).map(([name, block]) => ({ id: `${type}.${name}`, type, block })));

/** The roles the main module grants on the project with google_project_iam_member (literal, or a local list it iterates). */
function mainProjectRoles(): string[] {
  return Object.values(main.resources.google_project_iam_member ?? {}).flatMap((b: Block) => {
    if (b.role !== '${each.value}') return roleList(b.role);
    const local = /local\.([a-z_]+)/.exec(b.for_each)?.[1];
    if (!local) throw new Error(`google_project_iam_member iterates ${b.for_each}, not a local list of roles`);
    return roleList(main.locals[local]);
  });
}

/** Whether a member expression names the bootstrap's `account` service account. */
const isAccount = (member: unknown, account: string) => typeof member === 'string' && member.includes(`google_service_account.${account}.member`);

describe('layout', () => {
  it('is a root module of its own: versions, variables and outputs, the google provider pinned as terraform/ pins it', () => {
    for (const file of ['versions.tf', 'variables.tf', 'outputs.tf']) expect(Object.keys(boot.files)).toContain(file);
    const [block] = boot.files['versions.tf'].terraform;
    const [mainBlock] = main.files['versions.tf'].terraform;
    expect(block.required_providers[0].google).toEqual(mainBlock.required_providers[0].google);
    // Its state stays with the owner who applies it, out of the deploy account's reach (README there).
    expect(block.backend).toBeUndefined();
  });
});

describe('service accounts', () => {
  it("creates every tickrun account (the main module only grants on them), and the ci and deploy accounts", () => {
    const ids = Object.values(boot.resources.google_service_account ?? {}).map((b) => b.account_id).sort();
    expect(ids).toEqual(['build', 'ci', 'deploy', 'jobs', 'scheduler', 'tick'].map((a) => `\${var.name}-${a}`));
    expect(main.resources.google_service_account).toBeUndefined();
  });

  it('the main module names the same accounts the bootstrap creates', () => {
    const accounts = main.locals.accounts as string;
    expect(accounts).toContain('"${var.name}-${a}@${var.project_id}.iam.gserviceaccount.com"');
    const names = JSON.parse(/for a in (\[[^\]]*\])/.exec(accounts)![1]);
    expect(names.sort()).toEqual(['build', 'deploy', 'jobs', 'scheduler', 'tick']);
  });
});

describe('custom roles', () => {
  it('terraform/ names them by the id the bootstrap gives them', () => {
    const role = bootResource('google_project_iam_custom_role', 'tickrun');
    expect(role.role_id).toBe('${local.role_prefix}.${each.key}');
    expect(boot.locals.role_prefix).toBe('${replace(var.name, "-", "_")}');
    expect(main.locals.custom_role).toBe('projects/${var.project_id}/roles/${replace(var.name, "-", "_")}');
    const used = strings(main.resources).flatMap((s) => [...s.matchAll(/local\.custom_role\}\.(\w+)/g)].map((m) => m[1]));
    expect(used.length).toBeGreaterThan(0);
    for (const name of used) expect(Object.keys(boot.locals.custom_roles)).toContain(name);
  });
});

describe('APIs', () => {
  it('enables what tickrun and its pipeline call, iamcredentials (operators impersonate the tick) included, and never disables them on destroy', () => {
    const service = bootResource('google_project_service', 'enabled');
    expect(service.disable_on_destroy).toBe(false);
    expect(service.for_each).toMatch(/local\.apis/);
    const apis = Object.keys(boot.locals.apis ?? {}).length ? Object.keys(boot.locals.apis) : roleListOfApis(boot.locals.apis);
    for (const api of ['run', 'cloudfunctions', 'cloudbuild', 'cloudscheduler', 'sqladmin', 'artifactregistry', 'storage', 'iam', 'iamcredentials', 'logging', 'cloudresourcemanager']) {
      expect(apis).toContain(`${api}.googleapis.com`);
    }
  });
});

/** API names in a parsed local (a map by API, or a list). */
function roleListOfApis(value: unknown): string[] {
  return strings(value).flatMap((s) => [...s.matchAll(/[a-z]+\.googleapis\.com/g)].map((m) => m[0]));
}

describe('releases bucket', () => {
  it('is private, uniform, and forgets old releases', () => {
    const bucket = bootResource('google_storage_bucket', 'releases');
    expect(bucket.name).toBe('${var.project_id}-${var.name}-releases');
    expect(bucket.uniform_bucket_level_access).toBe(true);
    expect(bucket.public_access_prevention).toBe('enforced');
    expect(bucket.lifecycle_rule?.length).toBeGreaterThanOrEqual(1);
    expect(bucket.force_destroy).not.toBe(true);
  });

  it('ci may only create objects in it; deploy may only read them', () => {
    const onBucket = grantsOf(boot).filter((g) => g.type === 'google_storage_bucket_iam_member' && g.block.bucket === '${google_storage_bucket.releases.name}');
    const by = (account: string) => onBucket.filter((g) => isAccount(g.block.member, account)).map((g) => g.block.role);
    expect(by('ci')).toEqual(['roles/storage.objectCreator']);
    expect(by('deploy')).toEqual(['roles/storage.objectViewer']);
  });
});

describe('the ci account', () => {
  it('holds only its build logs and object creation in the releases bucket, in either module', () => {
    const grants = [...grantsOf(boot), ...grantsOf(main)].filter((g) => isAccount(g.block.member, 'ci') || strings(g.block.member).some((m) => m.includes('-ci@')));
    expect(grants.map((g) => `${g.type} ${g.block.role}`).sort()).toEqual([
      'google_project_iam_member roles/logging.logWriter',
      'google_storage_bucket_iam_member roles/storage.objectCreator',
    ]);
  });
});

describe('the deploy account', () => {
  const deployGrants = () => grantsOf(boot).filter((g) => isAccount(g.block.member, 'deploy'));

  it('lives, with its grants, only in the bootstrap: terraform/ holds no deploy account, no grant to it and no IAM-administering role', () => {
    expect(main.resources.google_project_iam_member?.deploy).toBeUndefined();
    const mainRoles = [...strings(main.resources), ...strings(main.locals)].filter((s) => s.includes('roles/'));
    for (const role of mainRoles) expect(role).not.toMatch(/roles\/(iam\.serviceAccountAdmin|resourcemanager\.projectIamAdmin|iam\.securityAdmin|iam\.roleAdmin)\b/);
    // Only the job runtime accounts' actAs grant may use serviceAccountUser in terraform/, and never on the project.
    for (const [name, b] of Object.entries(main.resources.google_project_iam_member ?? {})) expect([name, b.role]).not.toEqual([name, 'roles/iam.serviceAccountUser']);
  });

  it("holds projectIamAdmin only under a condition listing exactly the roles terraform/ grants on the project", () => {
    const admin = deployGrants().filter((g) => g.block.role === 'roles/resourcemanager.projectIamAdmin');
    expect(admin).toHaveLength(1);
    const expression: string = admin[0].block.condition?.[0]?.expression ?? '';
    const call = /api\.getAttribute\('iam\.googleapis\.com\/modifiedGrantsByRole', \[\]\)\.hasOnly\((.*)\)/.exec(expression);
    expect(call).not.toBeNull();
    // The list is built from a local of the bootstrap, so compare the roles it names.
    const listed = call![1].includes('local.') ? roleList(boot.locals[/local\.([a-z_]+)/.exec(call![1])![1]]) : roleList(call![1]);
    expect([...new Set(listed)].sort()).toEqual([...new Set(mainProjectRoles())].sort());
  });

  it('holds serviceAccountUser (actAs) only on tickrun\'s own accounts and the jobs\' accounts, never on the project', () => {
    for (const g of deployGrants()) {
      if (g.type === 'google_project_iam_member') expect([g.id, g.block.role]).not.toEqual([g.id, 'roles/iam.serviceAccountUser']);
    }
    const onAccounts = deployGrants().filter((g) => g.type === 'google_service_account_iam_member');
    const targets = onAccounts.flatMap((g) => strings([g.block.service_account_id, g.block.for_each]));
    for (const account of ['tick', 'scheduler', 'jobs', 'build']) expect(targets.join(' ')).toContain(account);
    // The jobs' own accounts, of this project and of others, all from var.job_service_accounts.
    for (const local of ['own_job_accounts', 'foreign_job_accounts']) {
      expect(targets.join(' ')).toContain(`local.${local}`);
      expect(boot.locals[local]).toContain('var.job_service_accounts');
    }
    expect(targets.join(' ')).not.toMatch(/google_service_account\.(ci|deploy)\b/);
  });

  it('may read and write the state bucket\'s objects, the bucket made by hand before the first init', () => {
    const state = deployGrants().filter((g) => g.type === 'google_storage_bucket_iam_member' && g.block.bucket === '${var.project_id}-tfstate');
    expect(state).toHaveLength(1);
  });
});

describe('the tick account', () => {
  it("may read log entries, for the dashboard's Load logs of a Cloud Run task, through a role holding only logging.logEntries.list", () => {
    const grants = grantsOf(boot).filter((g) => g.type === 'google_project_iam_member' && isAccount(g.block.member, 'tick'));
    expect(grants.map((g) => g.block.role)).toEqual(['${google_project_iam_custom_role.tickrun["logReader"].name}']);
    const roles = boot.locals.custom_roles as Record<string, Block[]> | string;
    expect(JSON.stringify(roles)).toMatch(/logReader[^}]*"permissions":\s*\[\s*"logging\.logEntries\.list"\s*\]/);
  });
});
