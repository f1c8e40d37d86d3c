import * as path from 'node:path';
import { isMap, isPair, isScalar, isSeq, parseDocument, type Document, type YAMLError } from 'yaml';
import { z } from 'zod';
import { WorkflowError } from '../errors';
import { WORKFLOW_NAME, WORKFLOW_NAME_RULE, type TaskSpec, type WorkflowDefinition } from './definition';
import { RETRY_BACKOFF_CAP_MS } from '../lifecycle';
import { formatDuration, parseDuration } from './duration';
import { checkSchedule, checkTimezone } from './schedule';

// A leading letter or digit keeps flag-like names ("-x") out of command lines and logs.
const TASK_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const JOB_ID = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const JOB_NAME = /^projects\/([^/]+)\/locations\/([^/]+)\/jobs\/([^/]+)$/;
// Project ids, project numbers and legacy domain-scoped ids ("example.com:proj").
const PROJECT = /^[a-z0-9][a-z0-9.:-]*$/;
const REGION = /^[a-z0-9-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// executionEnv writes these over the task's env, so a value given here would be silently lost.
const RESERVED_ENV = ['WORKFLOW', 'RUN_ID', 'TASK_ID', 'TASK_NAME', 'TASK_INDEX', 'TASK_INDEXES', 'ARRAY_ID', 'ATTEMPT', 'PARAMS'].map((v) => `TICKRUN_${v}`);
const MAX_FAN_OUT = 10_000; // Cloud Run's own limit on tasks per execution; also bounds the rows one run expands to.
const MAX_RETRIES = 100;
// Cloud Run stops a job's task after 168 hours at most (https://cloud.google.com/run/docs/configuring/task-timeout),
// so a longer timeout could never fire.
const MAX_TIMEOUT_MS = 168 * 3_600_000;
// The first retry already waits at most the retry cap, so a longer backoff would never be waited.
const BACKOFF_CAP = formatDuration(RETRY_BACKOFF_CAP_MS);
const BACKOFF_TOO_LONG = `at most ${BACKOFF_CAP}: retry delays are capped at ${BACKOFF_CAP}, so a longer backoff would never be waited`;

const expected = (what: string) => ({
  error: (i: { input: unknown }) =>
    i.input === undefined ? `required: ${what}` : i.input === null ? `expected ${what}, found an empty value` : `expected ${what}`,
});
const whole = (min: number, max: number, what: string) =>
  z.number(expected(what)).int(expected(what)).min(min, expected(what)).max(max, `at most ${max}`);
const strings = (what: string) => z.array(z.string(expected('a string (quote it)')), expected(what));
const duration = (min: number, max: number, tooLong: string) =>
  z.string(expected('a duration like 90s, 10m or 2h')).transform((text, ctx) => {
    try {
      const ms = parseDuration(text);
      if (ms < min) throw new Error('must be longer than 0s');
      if (ms > max) throw new Error(tooLong);
      return ms;
    } catch (err) {
      ctx.issues.push({ code: 'custom', message: (err as Error).message, input: text });
      return z.NEVER;
    }
  });

const taskShape = {
  executor: z.enum(['cloudrun', 'process'], expected('cloudrun or process')).optional(),
  job: z
    .string(expected('a Cloud Run job id or projects/P/locations/L/jobs/J'))
    .refine(isJob, 'expected a Cloud Run job id (lower-case letters, digits, "-") or its full name projects/P/locations/L/jobs/J')
    .optional(),
  project: z.string(expected('a GCP project id')).regex(PROJECT, 'expected a GCP project id, like my-project').optional(),
  region: z.string(expected('a GCP region')).regex(REGION, 'expected a GCP region, like us-central1').optional(),
  command: strings('a command as a list, like ["node", "load.js"]')
    .min(1, 'expected at least the program to run, like ["node", "load.js"]')
    .refine((argv) => argv[0] !== '', 'the program (first item) is empty')
    .optional(),
  count: whole(1, MAX_FAN_OUT, 'a whole number of tasks, 1 or more').optional(),
  args: strings('a list of arguments, like ["--full"]').optional(),
  env: z
    .record(
      z.string().regex(ENV_NAME, 'expected a variable name: letters, digits and "_", not starting with a digit')
        .refine((key) => !RESERVED_ENV.includes(key), 'reserved: tickrun sets this variable for every execution'),
      z.string(expected('a string (quote it)')),
      expected('a mapping of variable names to values, like {MODE: full}'),
    )
    .optional(),
  task_count: whole(1, MAX_FAN_OUT, 'a whole number of Cloud Run tasks, 1 or more').optional(),
  array: z.boolean(expected('true or false')).optional(),
  // Cloud Run takes a job's parallelism from the job alone: jobs.run's overrides are its containers, its
  // task count and its timeout (RunJobRequest.Overrides, cloud.google.com/run/docs/reference/rest/v2/
  // projects.locations.jobs/run), so a value here could not be sent. Refused with where it goes instead.
  parallelism: z
    .never({ error: "set on the Cloud Run job (its template's parallelism; terraform's jobs variable), not in the workflow: jobs.run cannot override it" })
    .optional(),
  depends_on: z.array(z.string(expected('a task name')), expected('a list of task names, like [extract]')).optional(),
  retries: whole(0, MAX_RETRIES, 'a whole number of further attempts, 0 or more').optional(),
  backoff: duration(0, RETRY_BACKOFF_CAP_MS, BACKOFF_TOO_LONG).optional(),
  timeout: duration(1, MAX_TIMEOUT_MS, 'at most 168h: Cloud Run stops a task after 168 hours, so a longer timeout could never fire').optional(),
};
const taskSchema = z.strictObject(taskShape, expected('a mapping of task fields'));
// A default dependency would make every task depend on it, including itself: always a cycle.
const defaultsSchema = taskSchema.extend({
  depends_on: z
    .never({ error: 'not allowed in defaults (every task, the named one too, would depend on it); put depends_on on each task' })
    .optional(),
});
const workflowSchema = z.strictObject(
  {
    name: z
      .string(expected("the workflow's name"))
      .regex(WORKFLOW_NAME, `expected ${WORKFLOW_NAME_RULE}`),
    description: z.string(expected('a string')).optional(),
    schedule: z
      .string(expected('a five-field cron, like "*/5 * * * *"'))
      .superRefine((text, ctx) => {
        try {
          checkSchedule(text);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      })
      .optional(),
    timezone: z
      .string(expected('an IANA time zone, like Europe/Paris'))
      .superRefine((text, ctx) => {
        try {
          checkTimezone(text);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      })
      .optional(),
    catchup: z.enum(['latest', 'all'], expected('latest (only the newest missed slot) or all (every missed slot)')).optional(),
    concurrency: whole(1, 100_000, 'a whole number, 1 or more').optional(),
    priority: whole(1, 1000, 'a whole number from 1 to 1000').optional(),
    defaults: defaultsSchema.optional(),
    tasks: z
      .record(
        z.string().regex(TASK_NAME, 'task names are letters, digits, "-" and "_", starting with a letter or digit, at most 63 characters'),
        taskSchema,
        expected('a mapping of task names to tasks'),
      )
      .refine((tasks) => Object.keys(tasks).length > 0, 'a workflow needs at least one task'),
  },
  expected('a mapping with name and tasks at the top of the file'),
);
type TaskFields = z.output<typeof taskSchema>;

/** The problems found in one workflow file: none and its definition, or at least one. */
export type WorkflowCheck = { definition: WorkflowDefinition; errors: [] } | { definition?: undefined; errors: WorkflowError[] };

/**
 * Reads one workflow file (contract: "Workflow files (YAML)") into its definition: defaults merged
 * into every task, durations in milliseconds, dependencies checked and their closure computed.
 * Throws the first WorkflowError found; checkWorkflow returns them all.
 */
export function parseWorkflow(text: string, file: string): WorkflowDefinition {
  const check = checkWorkflow(text, file);
  if (check.definition) return check.definition;
  throw check.errors[0];
}

/**
 * Like parseWorkflow, but returns every problem it can find in the file, so `validate` reports them
 * all at once. Stops after the first stage that fails (YAML, then fields, then tasks, then the graph),
 * since later stages would only repeat the earlier problems.
 */
export function checkWorkflow(text: string, file: string): WorkflowCheck {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    return { errors: doc.errors.map((e) => new WorkflowError(file, undefined, undefined, yamlReason(e))) };
  }
  keepScalarsAsWritten(doc);
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    // Aliases are resolved here, not while parsing: an unknown anchor or an alias bomb ends up here.
    return { errors: [new WorkflowError(file, undefined, undefined, `invalid YAML: ${(err as Error).message}`)] };
  }
  const proto = protoKeyPath(data, []);
  if (proto) {
    const task = proto[0] === 'tasks' ? proto[1] : undefined;
    return { errors: [new WorkflowError(file, task, proto.join('.'), '"__proto__" cannot be used as a name')] };
  }
  const parsed = workflowSchema.safeParse(data);
  if (!parsed.success) return { errors: parsed.error.issues.flatMap((issue) => fromIssue(file, issue)) };
  const { defaults = {}, tasks: taskFields, ...workflow } = parsed.data;
  const errors: WorkflowError[] = [];
  for (const field of ['timezone', 'catchup'] as const) {
    if (workflow[field] !== undefined && workflow.schedule === undefined) {
      errors.push(new WorkflowError(file, undefined, field, `${field} only applies to a schedule, and this workflow has none`));
    }
  }
  const tasks: Record<string, TaskSpec> = {};
  for (const [name, own] of Object.entries(taskFields)) {
    const refuse = (field: string, reason: string) => errors.push(new WorkflowError(file, name, `tasks.${name}.${field}`, reason));
    const spec = resolveTask(own, defaults, refuse);
    if (spec) tasks[name] = spec;
  }
  if (errors.length === 0) errors.push(...resolveDependencies(file, tasks));
  if (errors.length > 0) return { errors };
  return { definition: { ...workflow, dir: path.resolve(path.dirname(file)), tasks }, errors: [] };
}

/** A YAML syntax error as one line: where it is, then what is wrong. */
function yamlReason(error: YAMLError): string {
  const what = error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  const at = error.linePos?.[0];
  return at ? `invalid YAML at line ${at.line}, column ${at.col}: ${what}` : `invalid YAML: ${what}`;
}

/**
 * Env values, args and command items are strings, but YAML reads `PORT: 8080` or `DEBUG: true` as a
 * number or a boolean. Such a scalar keeps the text written in the file, so `ZIP: 01234` stays
 * "01234" and `V: 1.10` stays "1.10" instead of being rewritten by a round trip through a number.
 */
function keepScalarsAsWritten(doc: Document): void {
  const tasks = doc.get('tasks', true);
  const owners = [doc.get('defaults', true), ...(isMap(tasks) ? tasks.items.map((pair) => pair.value) : [])];
  for (const owner of owners) {
    if (!isMap(owner)) continue;
    for (const key of ['env', 'args', 'command']) {
      const list = owner.get(key, true);
      if (!isMap(list) && !isSeq(list)) continue;
      for (const item of list.items) {
        const node = isPair(item) ? item.value : item;
        if (isScalar(node) && ['number', 'boolean'].includes(typeof node.value) && node.source !== undefined) node.value = node.source;
      }
    }
  }
}

/**
 * The path to a `__proto__` key, if the file has one: zod skips such keys in records without a
 * word (assigning them would replace the result's prototype), so a task or variable named that way
 * would vanish instead of being refused.
 */
function protoKeyPath(value: unknown, at: string[]): string[] | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  for (const key of Object.keys(value)) {
    if (key === '__proto__') return [...at, key];
    const found = protoKeyPath((value as Record<string, unknown>)[key], [...at, key]);
    if (found) return found;
  }
  return undefined;
}

/** One WorkflowError per zod issue, naming the task and the field the issue's path points at. */
function fromIssue(file: string, issue: z.core.$ZodIssue): WorkflowError[] {
  const at = (keys: PropertyKey[]) => keys.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`)).join('');
  const task = issue.path[0] === 'tasks' && issue.path.length > 1 ? String(issue.path[1]) : undefined;
  if (issue.code === 'unrecognized_keys') {
    const known = issue.path.length === 0 ? Object.keys(workflowSchema.shape) : Object.keys(taskShape);
    const listed = known.filter((k) => issue.path[0] !== 'defaults' || k !== 'depends_on').join(', ');
    return issue.keys.map((key) => new WorkflowError(file, task, at([...issue.path, key]), `unknown field "${key}"; the fields here are: ${listed}`));
  }
  const reason = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
  // A bad task name is reported on the task itself.
  const keyTask = issue.code === 'invalid_key' && issue.path.length === 2 ? String(issue.path[1]) : task;
  return [new WorkflowError(file, keyTask, at(issue.path) || undefined, reason)];
}

/**
 * Merges the defaults into one task and checks what only the merged task can show: the fields its
 * executor needs. A task's own value replaces the default; `env` is merged key by key, task winning.
 * Fields of the other executor are refused when written on the task and dropped when defaulted, so
 * one `defaults` block can serve a mix of cloudrun and process tasks.
 */
function resolveTask(
  own: TaskFields,
  defaults: TaskFields,
  report: (field: string, reason: string) => void,
): TaskSpec | undefined {
  let refused = false;
  const refuse = (field: string, reason: string) => {
    refused = true;
    report(field, reason);
  };
  const merged = { ...defaults, ...own, env: { ...defaults.env, ...own.env } };
  const executor = merged.executor ?? 'cloudrun';
  const spec: TaskSpec = {
    executor,
    count: merged.count ?? 1,
    env: merged.env,
    dependsOn: [...new Set(own.depends_on ?? [])],
    ancestors: [], // filled by resolveDependencies once every task is known
    retries: merged.retries ?? 0,
    backoffMs: merged.backoff ?? 10_000,
  };
  if (merged.args) spec.args = merged.args;
  if (merged.timeout !== undefined) spec.timeoutMs = merged.timeout;
  if (executor === 'process') {
    for (const field of ['job', 'project', 'region', 'task_count', 'array'] as const) {
      if (own[field] !== undefined) refuse(field, `${field} is for cloudrun tasks; this task's executor is process`);
    }
    if (!merged.command) refuse('command', 'a process task needs command: the program and its arguments as a list, like ["node", "load.js"]');
    spec.command = merged.command;
    return refused ? undefined : spec;
  }
  if (own.command) refuse('command', 'command is for process tasks; a cloudrun task runs its job\'s container (use args to override its arguments)');
  if (!merged.job) refuse('job', 'a cloudrun task needs job: the Cloud Run job\'s id, or its full name projects/P/locations/L/jobs/J');
  const full = merged.job?.match(JOB_NAME);
  if (full) {
    // The full name says where the job is; only a task's own contradicting project/region is an error.
    if (own.project !== undefined && own.project !== full[1]) refuse('project', `"${own.project}" contradicts the project in job "${merged.job}"`);
    if (own.region !== undefined && own.region !== full[2]) refuse('region', `"${own.region}" contradicts the location in job "${merged.job}"`);
  }
  spec.job = merged.job;
  const project = full?.[1] ?? merged.project;
  const region = full?.[2] ?? merged.region;
  // Only fields that have a value, so stored definitions (and their hashes) carry no empty keys.
  if (project !== undefined) spec.project = project;
  if (region !== undefined) spec.region = region;
  if (merged.task_count !== undefined) spec.taskCount = merged.task_count;
  if (merged.array) {
    // Each Cloud Run task of an array execution is one logical task: a task_count inside it would make
    // several containers share one index.
    if (merged.task_count !== undefined) refuse(own.task_count !== undefined ? 'task_count' : 'array', 'task_count and array do not go together: an array task runs one Cloud Run task per index of its count');
    else spec.array = true;
  }
  return refused ? undefined : spec;
}

function isJob(job: string): boolean {
  const full = job.match(JOB_NAME);
  return full ? PROJECT.test(full[1]) && REGION.test(full[2]) && JOB_ID.test(full[3]) : JOB_ID.test(job);
}

/**
 * Checks every dependency names a task of the workflow and that none loops back on itself, then
 * fills each task's `ancestors`: every task it waits for, directly or not, sorted.
 */
function resolveDependencies(file: string, tasks: Record<string, TaskSpec>): WorkflowError[] {
  const names = Object.keys(tasks);
  const errors = names.flatMap((name) =>
    tasks[name].dependsOn
      .filter((dep) => !Object.hasOwn(tasks, dep))
      .map((dep) => {
        const reason = `"${dep}" is not a task of this workflow (its tasks: ${names.join(', ')})`;
        return new WorkflowError(file, name, `tasks.${name}.depends_on`, reason);
      }),
  );
  if (errors.length > 0) return errors;
  const cycle = findCycle(tasks);
  if (cycle) {
    const steps = cycle.map((name, i) => `"${name}" depends on "${cycle[(i + 1) % cycle.length]}"`);
    return [new WorkflowError(file, cycle[0], `tasks.${cycle[0]}.depends_on`, `dependency cycle: ${steps.join(', ')}`)];
  }
  const memo = new Map<string, Set<string>>();
  const closure = (name: string): Set<string> => {
    let found = memo.get(name);
    if (!found) {
      found = new Set(tasks[name].dependsOn.flatMap((dep) => [dep, ...closure(dep)]));
      memo.set(name, found);
    }
    return found;
  };
  for (const name of names) tasks[name].ancestors = [...closure(name)].sort();
  return [];
}

/** A cycle of tasks, each depending on the next and the last on the first, starting with the one declared first; or undefined. */
function findCycle(tasks: Record<string, TaskSpec>): string[] | undefined {
  const order = Object.keys(tasks);
  const state = new Map<string, 'visiting' | 'done'>();
  const trail: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return trail.slice(trail.indexOf(name));
    state.set(name, 'visiting');
    trail.push(name);
    for (const dep of tasks[name].dependsOn) {
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    trail.pop();
    state.set(name, 'done');
    return undefined;
  };
  for (const name of order) {
    const cycle = visit(name);
    if (cycle) {
      const first = cycle.reduce((a, b) => (order.indexOf(b) < order.indexOf(a) ? b : a));
      const at = cycle.indexOf(first);
      return [...cycle.slice(at), ...cycle.slice(0, at)];
    }
  }
  return undefined;
}
