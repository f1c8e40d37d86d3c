import path from 'node:path';
import { ConfigError } from './errors';
import { formatDuration, parseDuration } from './workflows/duration';

/** The performance profiles of the design note, picked by TICKRUN_PROFILE. */
// statusBatchSize is larger than batchSize: a job's in-flight executions checked in one pass cost one
// listing of them, where a batch at a time re-reads the newest pages for every batch (docs/performance.md).
export const PROFILES = {
  optimized: { pollIntervalMs: 2000, batchSize: 50, statusBatchSize: 500, dispatchConcurrency: 5, statusConcurrency: 20, poolSize: 5 },
  default: { pollIntervalMs: 5000, batchSize: 100, statusBatchSize: 1000, dispatchConcurrency: 10, statusConcurrency: 50, poolSize: 10 },
  high_throughput: { pollIntervalMs: 5000, batchSize: 500, statusBatchSize: 10_000, dispatchConcurrency: 50, statusConcurrency: 100, poolSize: 20 },
} as const;

export type ProfileName = keyof typeof PROFILES;

/** Where the database is, in the contract's order of precedence. */
export type DatabaseTarget =
  | { kind: 'url'; url: string }
  | { kind: 'cloudsql'; instanceConnectionName: string; user: string; database: string }
  | { kind: 'local'; home: string };

/** Everything a tick and the CLI need, parsed once at start-up and passed in. */
export interface Config {
  profile: ProfileName;
  pollIntervalMs: number;
  batchSize: number;
  /** Most in-flight executions checked per cycle. */
  statusBatchSize: number;
  dispatchConcurrency: number;
  statusConcurrency: number;
  poolSize: number;
  /** How long one tick may keep cycling; 0 is one cycle. */
  budgetMs: number;
  /** Deadline of each kind of executor API call (see CallTimeouts). */
  timeouts: CallTimeouts;
  /** A claim not renewed for this long is taken back by the next tick (its holder renews it while it works). */
  claimLeaseMs: number;
  /** How long stopping an attempt may take, from the first time it is asked, before the attempt ends anyway. */
  stopTimeoutMs: number;
  /** Each (project, region)'s Cloud Run limits, unless `tickrun regions set` gave that region its own (shared/regions.ts). */
  regions: RegionLimits;
  /** Local state: the embedded database, process executions and their logs. */
  home: string;
  database: DatabaseTarget;
  cloudRun: { emulatorHost?: string; defaultProject?: string; defaultRegion?: string };
  /** Where `tickrun logs` and the dashboard read Cloud Run executions' logs: CLOUD_LOGGING_EMULATOR_HOST, else Google's API. */
  cloudLogging?: { emulatorHost?: string };
}

/** Cloud Run's limits per (project, region) as tickrun keeps within them. */
export interface RegionLimits {
  /** Job run requests per minute: the run budget's ceiling. */
  runPerMinute: number;
  /** Read requests per minute. */
  readPerMinute: number;
  /** Most executions running at once… */
  maxRunning: number;
  /** …of which this many are left to executions started outside tickrun. */
  reserved: number;
}

/**
 * Deadline of each kind of executor API call, ms. Each fits what its call does at Cloud Run: `dispatch`
 * (jobs.run) creates an Execution and answers with it at once, without waiting for a container (about a
 * second), and a dispatch that outlasts its deadline is reconciled, holding its claim until the deadline
 * and a margin have passed, so it is short: three times that second; `read` (one execution or job, a cancel) reads or changes one
 * resource; `list` reads a page of up to 1,000 executions (a status listing, or the search for a lost
 * dispatch, env included), the largest answer. A read that outlasts its deadline costs a retry next
 * cycle, never a wrong answer; a hung one holds its tasks for its deadline, so none is long.
 */
export interface CallTimeouts {
  dispatch: number;
  read: number;
  list: number;
}

/** How a setting's text is written: each kind reads a text to a whole number and writes its bounds back. */
export type SettingKind = 'count' | 'milliseconds' | 'duration' | 'port';

const wholeNumber = (raw: string): number => (/^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN);

/** A duration as workflow files write it, or `0`; NaN when it is neither. */
function durationOrNaN(raw: string): number {
  if (raw.trim() === '0') return 0;
  try {
    return parseDuration(raw);
  } catch {
    return NaN;
  }
}

// A bound is written once, as a number; each kind writes it the way its text is read ("1h", "3600000").
const KINDS: Record<SettingKind, { noun: string; read: (raw: string) => number; write: (value: number) => string }> = {
  count: { noun: 'a whole number', read: wholeNumber, write: String },
  milliseconds: { noun: 'a whole number of milliseconds', read: wholeNumber, write: String },
  duration: { noun: 'a duration', read: durationOrNaN, write: formatDuration },
  port: { noun: 'a port', read: wholeNumber, write: String },
};

/**
 * One setting, declared once: the variable that sets it, the flag that sets it for one command (its
 * text may be of another kind: `--budget 50s` for TICKRUN_BUDGET_MS=50000), its bounds, its default
 * (a number, or the profile's value of the same key) and its help. What it accepts is derived from these.
 */
export interface Setting {
  variable: string;
  flag?: { name: string; kind: SettingKind };
  /** How the variable is written; the bounds and the default are in the unit it reads to (ms for time). */
  kind: SettingKind;
  min: number;
  max: number;
  /** What the lowest value means when it is a special one, shown in what the setting accepts. */
  minMeans?: string;
  default: number | 'profile';
  help: string;
}

const HOUR = 3_600_000;

/** Every setting: the profile's values, the tick's options and the dashboard port of `tickrun dev`. */
export const SETTINGS = {
  pollIntervalMs: { variable: 'TICKRUN_POLL_INTERVAL', kind: 'duration', min: 100, max: HOUR, default: 'profile', help: 'time between cycles of one tick (and of `tickrun dev` when idle; while tasks run it ticks every 0.5s at most)' },
  batchSize: { variable: 'TICKRUN_BATCH_SIZE', kind: 'count', min: 1, max: 10_000, default: 'profile', help: 'most tasks claimed per cycle' },
  statusBatchSize: { variable: 'TICKRUN_STATUS_BATCH_SIZE', kind: 'count', min: 1, max: 100_000, default: 'profile', help: 'most in-flight executions checked per cycle' },
  dispatchConcurrency: { variable: 'TICKRUN_DISPATCH_CONCURRENCY', kind: 'count', min: 1, max: 1000, default: 'profile', help: 'executions started at once' },
  statusConcurrency: { variable: 'TICKRUN_STATUS_CONCURRENCY', kind: 'count', min: 1, max: 1000, default: 'profile', help: 'status checks at once' },
  poolSize: { variable: 'TICKRUN_POOL_SIZE', kind: 'count', min: 1, max: 100, default: 'profile', help: 'database connections' },
  budgetMs: {
    variable: 'TICKRUN_BUDGET_MS', flag: { name: '--budget', kind: 'duration' }, kind: 'milliseconds', min: 0, max: HOUR, default: 0,
    help: 'how long one tick keeps cycling (0 is one cycle)',
  },
  dispatchTimeoutMs: { variable: 'TICKRUN_DISPATCH_TIMEOUT', kind: 'duration', min: 100, max: 600_000, default: 3000, help: 'deadline of a call that starts an execution (Cloud Run jobs.run)' },
  readTimeoutMs: { variable: 'TICKRUN_READ_TIMEOUT', kind: 'duration', min: 100, max: 600_000, default: 5000, help: 'deadline of a call that reads or stops one execution or job' },
  listTimeoutMs: { variable: 'TICKRUN_LIST_TIMEOUT', kind: 'duration', min: 100, max: 600_000, default: 10_000, help: "deadline of a call that reads a page of a job's executions" },
  apiTimeoutMs: {
    variable: 'TICKRUN_API_TIMEOUT', kind: 'duration', min: 0, max: 600_000, minMeans: 'each call its own', default: 0,
    help: 'one deadline for every executor API call whose own variable above is not set',
  },
  claimLeaseMs: {
    variable: 'TICKRUN_CLAIM_LEASE', kind: 'duration', min: 1000, max: HOUR, default: 8000,
    help: 'how long a claim lasts unless its tick renews it: a dead tick\'s claims come back after this',
  },
  stopTimeoutMs: {
    variable: 'TICKRUN_STOP_TIMEOUT', kind: 'duration', min: 1000, max: 24 * HOUR, default: 600_000,
    help: 'how long stopping an attempt (past its timeout, or of a cancelled run) may take before it ends anyway, its execution maybe still running',
  },
  runRequestsPerMinute: {
    variable: 'TICKRUN_RUN_REQUESTS_PER_MINUTE', kind: 'count', min: 1, max: 1_000_000, default: 180,
    help: "Cloud Run job run requests per minute per project and region, shared by every tick (Cloud Run's \"Job run requests per minute per region\" quota; `tickrun regions set` sets one region's)",
  },
  readRequestsPerMinute: {
    variable: 'TICKRUN_READ_REQUESTS_PER_MINUTE', kind: 'count', min: 1, max: 1_000_000, default: 1200,
    help: "Cloud Run read requests per minute per project and region (Cloud Run's \"Read requests per minute per region\" quota)",
  },
  maxRunningExecutions: {
    variable: 'TICKRUN_MAX_RUNNING_EXECUTIONS', kind: 'count', min: 1, max: 10_000, default: 1000,
    help: "most Cloud Run executions running at once per project and region (Cloud Run's limit is 1,000), the reserve below included",
  },
  reservedExecutions: {
    variable: 'TICKRUN_RESERVED_EXECUTIONS', kind: 'count', min: 0, max: 10_000, default: 0,
    help: 'executions per project and region kept free for those started outside tickrun: tickrun runs at most the maximum less this',
  },
  dashboardPort: {
    variable: 'TICKRUN_DASHBOARD_PORT', flag: { name: '--port', kind: 'port' }, kind: 'port', min: 0, max: 65_535, minMeans: 'any free one', default: 8787,
    help: "port of `tickrun dev`'s dashboard on 127.0.0.1",
  },
} as const satisfies Record<string, Setting>;

/** The name of a setting in SETTINGS, which is also its key in Config (and, for budgetMs, in the tick's body). */
export type SettingKey = keyof typeof SETTINGS;

/** A setting that has a command-line flag. */
export type FlaggedSettingKey = { [K in SettingKey]: (typeof SETTINGS)[K] extends { flag: object } ? K : never }[SettingKey];

/** What a setting accepts, written from its kind and bounds: "a duration from 100ms to 10m". */
export function accepts(setting: Setting, kind: SettingKind = setting.kind): string {
  const { noun, write } = KINDS[kind];
  return `${noun} from ${write(setting.min)}${setting.minMeans ? ` (${setting.minMeans})` : ''} to ${write(setting.max)}`;
}

/** Whether a value (a JSON body's, say) is one the setting takes: a whole number within its bounds. */
export function isAccepted(setting: Setting, value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= setting.min && value <= setting.max;
}

function readText(setting: Setting, source: string, raw: string, kind: SettingKind): number {
  const value = KINDS[kind].read(raw);
  if (!isAccepted(setting, value)) throw new ConfigError(`${source}=${JSON.stringify(raw)} is not valid: it accepts ${accepts(setting, kind)}`);
  return value;
}

function defaultOf(key: SettingKey, profile: Readonly<Record<string, number>> | undefined): number {
  const fallback: number | 'profile' = SETTINGS[key].default;
  if (fallback !== 'profile') return fallback;
  if (profile?.[key] === undefined) throw new Error(`${key} defaults to the profile's value, and none was given`);
  return profile[key];
}

/**
 * A setting from its variable in `env`, else its default (`profile`'s value for those that come from the
 * profile); an empty variable counts as unset. ConfigError naming the variable and what it accepts.
 */
export function readVariable(key: SettingKey, env: NodeJS.ProcessEnv, profile?: Readonly<Record<string, number>>): number {
  const setting: Setting = SETTINGS[key];
  const raw = env[setting.variable];
  if (raw === undefined || raw === '') return defaultOf(key, profile);
  return readText(setting, setting.variable, raw, setting.kind);
}

/**
 * A setting from its flag when the command was given one (`option`), else from its variable: both are
 * checked against the one declaration, so they cannot disagree. ConfigError naming the flag or variable.
 */
export function readOption(key: FlaggedSettingKey, option: string | undefined, env: NodeJS.ProcessEnv): number {
  const setting = SETTINGS[key];
  return option === undefined ? readVariable(key, env) : readText(setting, setting.flag.name, option, setting.flag.kind);
}

const defaultText = (setting: Setting): string => (setting.default === 'profile' ? "the profile's" : KINDS[setting.kind].write(setting.default));

/** A setting's line in `tickrun --help`: what it does, what it accepts, its default and its flag. */
export function describeSetting(key: SettingKey): string {
  const setting: Setting = SETTINGS[key];
  const flag = setting.flag ? `; or ${setting.flag.name}${setting.flag.kind === setting.kind ? '' : `, ${accepts(setting, setting.flag.kind)}`}` : '';
  return `${setting.help}; ${accepts(setting)} (default: ${defaultText(setting)})${flag}`;
}

/** A flag's description in its command's help: what it does, what it accepts, and what applies without it. */
export function describeFlag(key: FlaggedSettingKey): string {
  const setting = SETTINGS[key];
  return `${setting.help}; ${accepts(setting, setting.flag.kind)} (default: ${setting.variable}, else ${defaultText(setting)})`;
}

/** An emulator's address variable (the Google convention, host:port); ConfigError naming it when malformed. */
function readHostPort(variable: string, env: NodeJS.ProcessEnv): string | undefined {
  const host = env[variable] || undefined;
  if (host && !/^[\w.-]+:\d+$/.test(host) && !/^\[[\d:a-f]+\]:\d+$/i.test(host)) {
    throw new ConfigError(`${variable}=${JSON.stringify(host)} is not valid: it accepts host:port`);
  }
  return host;
}

function readDatabase(env: NodeJS.ProcessEnv, home: string): DatabaseTarget {
  if (env.DATABASE_URL) {
    if (!/^postgres(ql)?:\/\//.test(env.DATABASE_URL)) {
      throw new ConfigError('DATABASE_URL is not valid: it accepts a postgres:// or postgresql:// URL');
    }
    return { kind: 'url', url: env.DATABASE_URL };
  }
  if (env.INSTANCE_CONNECTION_NAME) {
    if (!/^[^:]+:[^:]+:[^:]+$/.test(env.INSTANCE_CONNECTION_NAME)) {
      throw new ConfigError('INSTANCE_CONNECTION_NAME is not valid: it accepts PROJECT:REGION:INSTANCE');
    }
    if (!env.DB_USER || !env.DB_NAME) {
      throw new ConfigError('INSTANCE_CONNECTION_NAME needs DB_USER (the IAM database user) and DB_NAME set too');
    }
    return { kind: 'cloudsql', instanceConnectionName: env.INSTANCE_CONNECTION_NAME, user: env.DB_USER, database: env.DB_NAME };
  }
  return { kind: 'local', home };
}

/**
 * Reads the configuration from the environment (a parameter, so tests pass their own):
 * the profile's values, each overridden by its own variable, then where the database and Cloud Run are.
 * Throws ConfigError naming the variable and what it accepts.
 */
export function parseConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const profileName = (env.TICKRUN_PROFILE || 'default') as ProfileName;
  if (!Object.hasOwn(PROFILES, profileName)) {
    throw new ConfigError(`TICKRUN_PROFILE=${JSON.stringify(env.TICKRUN_PROFILE)} is not valid: it accepts ${Object.keys(PROFILES).join(', ')}`);
  }
  const p = PROFILES[profileName];
  const home = path.resolve(cwd, env.TICKRUN_HOME || '.tickrun');
  const emulatorHost = readHostPort('CLOUD_RUN_EMULATOR_HOST', env);
  const config: Config = {
    profile: profileName,
    pollIntervalMs: readVariable('pollIntervalMs', env, p),
    batchSize: readVariable('batchSize', env, p),
    statusBatchSize: readVariable('statusBatchSize', env, p),
    dispatchConcurrency: readVariable('dispatchConcurrency', env, p),
    statusConcurrency: readVariable('statusConcurrency', env, p),
    poolSize: readVariable('poolSize', env, p),
    budgetMs: readVariable('budgetMs', env),
    timeouts: readTimeouts(env),
    claimLeaseMs: readVariable('claimLeaseMs', env),
    stopTimeoutMs: readVariable('stopTimeoutMs', env),
    regions: {
      runPerMinute: readVariable('runRequestsPerMinute', env),
      readPerMinute: readVariable('readRequestsPerMinute', env),
      maxRunning: readVariable('maxRunningExecutions', env),
      reserved: readVariable('reservedExecutions', env),
    },
    home,
    database: readDatabase(env, home),
    cloudRun: {
      emulatorHost,
      defaultProject: env.GOOGLE_CLOUD_PROJECT || env.GCLOUD_PROJECT || undefined,
      defaultRegion: env.TICKRUN_REGION || env.GOOGLE_CLOUD_REGION || undefined,
    },
    cloudLogging: { emulatorHost: readHostPort('CLOUD_LOGGING_EMULATOR_HOST', env) },
  };
  // A dispatch must be able to end, with its margin, within what is left of a lease its tick keeps renewed
  // (two thirds of it: steps/leases.ts).
  const least = Math.ceil(((config.timeouts.dispatch + LEASE_MARGIN_MS) * 3) / 2);
  if (config.claimLeaseMs < least) {
    throw new ConfigError(
      `${SETTINGS.claimLeaseMs.variable} (${formatDuration(config.claimLeaseMs)}) must be at least 1.5 × (${SETTINGS.dispatchTimeoutMs.variable} + 1s) = ${formatDuration(least)}`,
    );
  }
  if (config.regions.reserved >= config.regions.maxRunning) {
    throw new ConfigError(
      `${SETTINGS.reservedExecutions.variable} (${config.regions.reserved}) must be less than ${SETTINGS.maxRunningExecutions.variable} (${config.regions.maxRunning}): nothing would be left for tickrun to run`,
    );
  }
  return config;
}

/** The per-call deadlines: each its own variable, else TICKRUN_API_TIMEOUT when set, else its default. */
function readTimeouts(env: NodeJS.ProcessEnv): CallTimeouts {
  const every = readVariable('apiTimeoutMs', env);
  const one = (key: 'dispatchTimeoutMs' | 'readTimeoutMs' | 'listTimeoutMs') =>
    every > 0 && !env[SETTINGS[key].variable] ? every : readVariable(key, env);
  return { dispatch: one('dispatchTimeoutMs'), read: one('readTimeoutMs'), list: one('listTimeoutMs') };
}

/** The same deadline for every kind of call. */
export const everyCall = (ms: number): CallTimeouts => ({ dispatch: ms, read: ms, list: ms });

/** A call must end this long before its claim's lease does, so that reconciliation never races it. */
export const LEASE_MARGIN_MS = 1000;
