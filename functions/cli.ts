import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import type { Pool } from 'pg';
import { table, counts, elapsed } from '../shared/cli/format';
import { collectParam } from '../shared/cli/params';
import { describeFlag, describeSetting, parseConfig, PROFILES, readOption, SETTINGS, type Config, type SettingKey } from '../shared/config';
import { openPool } from '../shared/db';
import { parseDashboardPort } from '../shared/dashboard/port';
import { runDev } from '../shared/dev';
import { describeThrown, UsageError } from '../shared/errors';
import { createExecutors } from '../shared/executors';
import { grantTableAccess } from '../shared/grant';
import { migrate } from '../shared/migrate';
import { getRun, listRuns, type Run } from '../shared/model/runs';
import { listRegions, type RegionView } from '../shared/model/regions';
import { listTasks } from '../shared/model/tasks';
import { listWorkflows } from '../shared/model/workflows';
import { showLogs } from '../shared/logs/show';
import { cancelRun } from '../shared/operator/cancel';
import { setSchedulePaused } from '../shared/operator/pause';
import { setRegionLimits } from '../shared/operator/regions';
import { retryRun, whyNotRetried } from '../shared/operator/retry';
import { triggerRun } from '../shared/operator/trigger';
import { tick } from '../shared/tick';
import { applyWorkflows } from '../shared/workflows/apply';
import { loadWorkflowFiles } from '../shared/workflows/load';

const print = (text: string): void => void process.stdout.write(text + "\n");
const printJson = (value: unknown): void => print(JSON.stringify(value, null, 2));

/** The regions as `tickrun regions` and `tickrun status` print them. */
function regionsTable(views: RegionView[]): string {
  return table(
    ['REGION', 'RUN BUDGET', 'USED (60S)', 'READS (60S)', '429S (1H)', 'RUNNING', 'QUEUED', 'HOLDING BACK'],
    views.map((v) => [
      v.region,
      `${Math.round(v.rate)}${v.rate < v.runPerMinute ? ` of ${v.runPerMinute}` : ''}/min${v.ownRunPerMinute ? ' (own)' : ''}`,
      v.usedLastMinute, `${v.readsLastMinute} of ${v.readPerMinute}/min`, v.throttledLastHour, `${v.running} of ${v.cap}`, v.queued, v.holding,
    ]),
  );
}

/** Opens the configured database for one command and closes it after. */
async function withPool<T>(config: Config, fn: (pool: Pool) => Promise<T>): Promise<T> {
  const pool = await openPool(config);
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

function runLine(r: Run): (string | number | null)[] {
  return [r.id, r.workflow, r.status, r.createdAt, elapsed(r.startedAt, r.finishedAt), counts(r.tasks)];
}

const HELP_VARIABLES = `
Workflow features:
  schedule      a five-field cron read in \`timezone\` (an IANA name, default UTC); each tick makes the runs
                whose slots have come, exactly once per slot even when ticks overlap or die half-way.
                After downtime \`catchup: latest\` (default) runs the newest missed slot only, \`catchup: all\`
                every missed slot (at most 100). \`tickrun pause|resume WORKFLOW\` stops and restarts it;
                \`tickrun workflows\` shows the next slot.
  concurrency   most tasks of the workflow in flight at once, across all its runs and every tick;
                the others wait their turn, oldest run first.
  idempotency   \`tickrun trigger W --idempotency-key KEY\` returns the run made earlier with the same key
                for the same workflow, also when triggers race.

Environment:
  DATABASE_URL                 postgres URL of the database (else INSTANCE_CONNECTION_NAME, else tickrun dev's)
  INSTANCE_CONNECTION_NAME     Cloud SQL instance PROJECT:REGION:INSTANCE, with DB_USER and DB_NAME (IAM auth)
  CLOUD_RUN_EMULATOR_HOST      host:port of a Cloud Run Admin API emulator (plain HTTP, no credentials)
  CLOUD_LOGGING_EMULATOR_HOST  host:port of a Cloud Logging API emulator, read by \`tickrun logs\` (plain HTTP, no credentials)
  GOOGLE_CLOUD_PROJECT, TICKRUN_REGION   project and region for a bare job id with none in the workflow
  TICKRUN_HOME                 local state folder (default .tickrun)
  TICKRUN_DEBUG=1              print stack traces of failures
  TICKRUN_PROFILE              ${Object.keys(PROFILES).join(' | ')} (default: default), which sets the values below whose default is the profile's
${(Object.keys(SETTINGS) as SettingKey[]).map((key) => `  ${SETTINGS[key].variable.padEnd(28)} ${describeSetting(key)}`).join('\n')}

Profiles (poll, batch, dispatch concurrency, status concurrency, pool):
${Object.entries(PROFILES).map(([n, p]) => `  ${n.padEnd(16)} ${p.pollIntervalMs / 1000}s, ${p.batchSize}, ${p.dispatchConcurrency}, ${p.statusConcurrency}, ${p.poolSize}`).join('\n')}

Exit codes: 0 success; 2 bad usage or invalid input; 1 any other failure.`;

/** Builds the `tickrun` program; `env` is read once, when a command runs. */
export function buildProgram(env: NodeJS.ProcessEnv = process.env): Command {
  const config = () => parseConfig(env);
  const program = new Command('tickrun')
    .description('Run DAGs of Cloud Run Jobs (and local processes) from Postgres, one tick at a time.')
    .addHelpText('after', HELP_VARIABLES)
    .showHelpAfterError(false)
    .exitOverride();

  // The flags' names, texts and bounds come from their settings' declarations, as their variables' do.
  const port = new Option(`${SETTINGS.dashboardPort.flag.name} <port>`, describeFlag('dashboardPort'));
  program
    .command('dev')
    .description("local all-in-one: embedded Postgres under .tickrun/, migrate, apply examples/, serve the dashboard, tick until Ctrl-C")
    .option('--examples <dir>', 'workflows to apply at start', 'examples')
    .addOption(port)
    .action(async (opts) => {
      const dashboardPort = parseDashboardPort(opts[port.attributeName()], env);
      const abort = new AbortController();
      const stop = () => abort.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await runDev(config(), { examples: path.resolve(opts.examples), dashboardPort, out: print, signal: abort.signal });
    });

  program
    .command('migrate')
    .description('apply pending migrations (safe to run twice, and from two machines at once)')
    .action(() =>
      withPool(config(), async (pool) => {
        const applied = await migrate(pool);
        print(applied.length ? `applied ${applied.join(', ')}` : 'nothing to migrate');
      }),
    );

  program
    .command('grant')
    .description("let a database user (the tick's) read and write tickrun's tables, now and after later migrations")
    .argument('<dbUser>')
    .action((dbUser: string) =>
      withPool(config(), async (pool) => {
        await grantTableAccess(pool, dbUser);
        print(`granted "${dbUser}" reading and writing of tickrun's tables`);
      }),
    );

  program
    .command('validate')
    .description('check workflow files (a file or a folder of .yaml/.yml); changes nothing')
    .argument('<paths...>')
    .action(async (paths: string[]) => {
      const loaded = await loadWorkflowFiles(paths);
      for (const w of loaded) print(`ok ${w.file}: ${w.definition.name} (${Object.keys(w.definition.tasks).length} tasks)`);
    });

  program
    .command('apply')
    .description('validate, then create or update those workflows, all or nothing')
    .argument('<paths...>')
    .action(async (paths: string[]) => {
      const loaded = await loadWorkflowFiles(paths);
      const applied = await withPool(config(), (pool) => applyWorkflows(pool, loaded.map((w) => w.definition)));
      for (const w of applied) print(`${w.action} ${w.name} (version ${w.version})`);
    });

  program
    .command('workflows')
    .description('list workflows')
    .option('--json', 'one JSON document on stdout')
    .action(async (opts) => {
      // The read model's workflows (schedule, next slot, limit), in the contract's shape.
      const list = (await withPool(config(), listWorkflows)).map((w) => ({
        name: w.name,
        description: w.description,
        schedule: w.schedule,
        nextRunAt: w.nextSlotAt,
        timezone: w.timezone,
        catchup: w.schedule ? (w.definition.catchup ?? 'latest') : null,
        paused: w.paused,
        concurrency: w.concurrency,
        tasks: Object.keys(w.definition.tasks).length,
        version: w.version,
        updatedAt: w.updatedAt,
      }));
      if (opts.json) return printJson(list);
      print(
        table(
          ['NAME', 'SCHEDULE', 'NEXT RUN', 'CONCURRENCY', 'TASKS', 'VERSION', 'DESCRIPTION'],
          list.map((w) => [w.name, w.schedule && `${w.schedule} ${w.timezone}`, w.paused ? 'paused' : w.nextRunAt, w.concurrency, w.tasks, w.version, w.description]),
        ),
      );
    });

  for (const [verb, paused] of [['pause', true], ['resume', false]] as const) {
    program
      .command(verb)
      .description(paused ? "pause a workflow's schedule (runs in flight go on)" : "resume a workflow's schedule from its next slot")
      .argument('<workflow>')
      .action(async (workflow: string) => {
        const { nextRunAt } = await withPool(config(), (pool) => setSchedulePaused(pool, workflow, paused));
        print(paused ? `paused ${workflow}` : `resumed ${workflow}: next run at ${nextRunAt}`);
      });
  }

  program
    .command('trigger')
    .description('create a run; the same --idempotency-key for the same workflow returns the same run')
    .argument('<workflow>')
    .option('--param <key=value>', 'a run parameter (repeatable), given to tasks as TICKRUN_PARAMS', collectParam)
    .option('--idempotency-key <key>', 'return the run created earlier with this key, if any')
    .option('--json', 'one JSON document on stdout')
    .action(async (workflow: string, opts) => {
      const { runId, created } = await withPool(config(), (pool) =>
        triggerRun(pool, workflow, { params: opts.param, idempotencyKey: opts.idempotencyKey }),
      );
      if (opts.json) return printJson({ runId });
      print(created ? `triggered ${workflow}: run ${runId}` : `run ${runId} already exists for that idempotency key`);
    });

  const budget = new Option(`${SETTINGS.budgetMs.flag.name} <duration>`, describeFlag('budgetMs'));
  program
    .command('tick')
    .description('one tick: one poll cycle, or cycles every poll interval until the budget is spent')
    .addOption(budget)
    .option('--json', 'one JSON document on stdout')
    .action(async (opts) => {
      const cfg = config();
      const budgetMs = readOption('budgetMs', opts[budget.attributeName()], env);
      const summary = await withPool(cfg, (pool) => tick({ config: cfg, pool, executors: createExecutors(cfg) }, { budgetMs }));
      if (opts.json) return printJson(summary);
      print(Object.entries(summary).map(([k, v]) => `${k}=${v}`).join(' '));
    });

  program
    .command('status')
    .description('runs, latest first, or one run with its task counts by status')
    .argument('[runId]')
    .option('--limit <n>', 'how many runs to list', '50')
    .option('--json', 'one JSON document on stdout')
    .action(async (runId: string | undefined, opts) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError(`--limit ${JSON.stringify(opts.limit)} is not valid: it accepts a whole number from 1 to 10000`);
      const cfg = config();
      if (runId) {
        const run = await withPool(cfg, (pool) => getRun(pool, runId));
        if (opts.json) return printJson(run);
        print(table(['RUN', 'WORKFLOW', 'STATUS', 'CREATED', 'DURATION', 'TASKS'], [runLine(run)]));
        if (run.error) print(`error: ${run.error}`);
        return;
      }
      if (opts.json) return printJson(await withPool(cfg, (pool) => listRuns(pool, { limit })));
      const [runs, regions] = await withPool(cfg, (pool) => Promise.all([listRuns(pool, { limit }), listRegions(pool, cfg.regions)]));
      print(table(['RUN', 'WORKFLOW', 'STATUS', 'CREATED', 'DURATION', 'TASKS'], runs.map(runLine)));
      // The JSON form is the contract's array of runs; the regions are `tickrun regions --json`.
      if (regions.length > 0) print(`\n${regionsTable(regions)}`);
    });

  // `default` stays a word here: commander keeps no null from a parser (it stores '').
  const limitValue = (flag: string) => (text: string): number | 'default' => {
    if (text === 'default') return text;
    if (!/^\d+$/.test(text)) throw new UsageError(`${flag} ${JSON.stringify(text)} is not valid: it accepts a whole number, or default`);
    return Number(text);
  };
  const limitChange = (value: number | 'default' | undefined) => (value === 'default' ? null : value);
  const regions = program
    .command('regions')
    .description("Cloud Run's limits per project and region: run budget, 429s, executions running against the cap")
    .option('--json', 'one JSON document on stdout')
    .action(async (opts) => {
      const cfg = config();
      const views = await withPool(cfg, (pool) => listRegions(pool, cfg.regions));
      if (opts.json) return printJson(views);
      print(views.length > 0 ? regionsTable(views) : 'no region yet: a Cloud Run task adds its own when its run starts');
    });
  regions
    .command('set')
    .description("give one region its own limits, instead of the ticks' TICKRUN_* settings")
    .argument('<region>', 'PROJECT/REGION')
    .option('--run-per-minute <n>', `${SETTINGS.runRequestsPerMinute.help} (or default)`, limitValue('--run-per-minute'))
    .option('--read-per-minute <n>', `${SETTINGS.readRequestsPerMinute.help} (or default)`, limitValue('--read-per-minute'))
    .option('--max-running <n>', `${SETTINGS.maxRunningExecutions.help} (or default)`, limitValue('--max-running'))
    .option('--reserved <n>', `${SETTINGS.reservedExecutions.help} (or default)`, limitValue('--reserved'))
    .action(async (region: string, opts) => {
      const cfg = config();
      const views = await withPool(cfg, async (pool) => {
        const changes = { runPerMinute: limitChange(opts.runPerMinute), readPerMinute: limitChange(opts.readPerMinute), maxRunning: limitChange(opts.maxRunning), reserved: limitChange(opts.reserved) };
        await setRegionLimits(pool, region, changes, cfg.regions);
        return listRegions(pool, cfg.regions);
      });
      print(regionsTable(views.filter((v) => v.region === region)));
    });

  program
    .command('tasks')
    .description("one run's tasks")
    .argument('<runId>')
    .option('--json', 'one JSON document on stdout')
    .action(async (runId: string, opts) => {
      const cfg = config();
      const tasks = await withPool(cfg, (pool) => listTasks(pool, runId, cfg.regions));
      // The JSON form is the contract's shape; why a task waits is the human form's and the dashboard's.
      if (opts.json) return printJson(tasks.map(({ waiting, ...task }) => task));
      print(table(['TASK', 'INDEX', 'STATUS', 'ATTEMPT', 'EXECUTION', 'ERROR', 'WAITING'], tasks.map((t) => [t.name, t.index, t.status, t.attempt, t.executionName, t.error, t.waiting])));
    });

  program
    .command('cancel')
    .description('cancel a run: queued tasks now, running executions through their executor')
    .argument('<runId>')
    .action(async (runId: string) => {
      const cfg = config();
      const result = await withPool(cfg, (pool) => cancelRun(pool, cfg, createExecutors(cfg), runId));
      if (!result.cancelled) return print(`run ${runId} had already ended (${result.status})`);
      print(`cancelled run ${runId}: ${result.cancelledTasks} tasks, ${result.executionsCancelled} executions stopped`);
      for (const e of result.errors) print(`not yet stopped (the next tick retries): ${e}`);
    });

  program
    .command('retry')
    .description("retry a failed run: its failed tasks are queued again with their retries, the tasks skipped because of them wait again")
    .argument('<runId>')
    .option('--json', 'one JSON document on stdout')
    .action(async (runId: string, opts) => {
      const result = await withPool(config(), (pool) => retryRun(pool, runId));
      if (!result.retried) throw new UsageError(whyNotRetried(runId, result.status));
      if (opts.json) return printJson({ runId, ...result });
      print(`retrying run ${runId}: ${result.requeuedTasks} failed tasks queued again, ${result.resetTasks} skipped tasks waiting again`);
    });

  program
    .command('logs')
    .description("a task's output: a process task's output.log, a Cloud Run execution's entries in Cloud Logging (else the console link)")
    .argument('<runId>')
    .argument('[task]', 'TASK or TASK:INDEX; may be left out when the run has one task')
    .option('--attempt <n>', 'which attempt (default: the latest)')
    .option('--follow', 'keep printing new output until the attempt ends')
    .action(async (runId: string, task: string | undefined, opts) => {
      const attempt = opts.attempt === undefined ? undefined : Number(opts.attempt);
      if (attempt !== undefined && !(Number.isInteger(attempt) && attempt >= 1)) {
        throw new UsageError(`--attempt ${JSON.stringify(opts.attempt)} is not valid: it accepts a whole number from 1`);
      }
      const cfg = config();
      await withPool(cfg, (pool) =>
        showLogs(pool, cfg, { runId, task, attempt, follow: Boolean(opts.follow) }, {
          write: (chunk) => void process.stdout.write(chunk),
          note: (line) => void process.stderr.write(line + '\n'),
        }),
      );
    });

  return program;
}

/** Runs the CLI and returns the contract's exit code: 0 success, 2 bad usage or input, 1 failure. */
export async function main(argv = process.argv, env = process.env): Promise<number> {
  const program = buildProgram(env);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`tickrun: ${err.message}\n`);
      return 2;
    }
    // One line that says what failed, whatever was thrown; TICKRUN_DEBUG adds the stack when there is one.
    const stack = env.TICKRUN_DEBUG === '1' && err instanceof Error && err.stack ? `\n${err.stack}` : '';
    process.stderr.write(`tickrun: ${describeThrown(err)}${stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  main().then((code) => {
    process.exitCode = code;
  });
}
