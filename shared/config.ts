import path from 'node:path';
import { ConfigError } from './errors';
import { parseDuration } from './workflows/duration';

/** The performance profiles of the design note, picked by TICKRUN_PROFILE. */
// statusBatchSize is larger than batchSize: a job's executions are listed (up to 1,000 a call, newest
// first), so checking all of a job's in-flight executions in one pass costs one listing of them, where
// checking them a batch at a time re-reads the newest pages for every batch (measured with 10K in
// flight: 1,069 list calls in batches of 500, 10 in one pass).
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
  /** Deadline of each executor API call. */
  apiTimeoutMs: number;
  /** A claimed task not recorded as sent within this time is taken back by the next tick. */
  claimLeaseMs: number;
  /** Local state: the embedded database, process executions and their logs. */
  home: string;
  database: DatabaseTarget;
  cloudRun: { emulatorHost?: string; defaultProject?: string; defaultRegion?: string };
}

/** One overridable setting: its variable, what it accepts, and how to read it. */
interface Setting {
  variable: string;
  accepts: string;
  help: string;
}

/** Every variable that overrides a profile value or sets a tick option, for `tickrun --help`. */
export const SETTINGS: Record<string, Setting> = {
  pollIntervalMs: { variable: 'TICKRUN_POLL_INTERVAL', accepts: 'a duration such as 2s or 500ms', help: 'time between cycles of one tick (and of `tickrun dev`)' },
  batchSize: { variable: 'TICKRUN_BATCH_SIZE', accepts: 'a whole number from 1 to 10000', help: 'most tasks claimed per cycle' },
  statusBatchSize: { variable: 'TICKRUN_STATUS_BATCH_SIZE', accepts: 'a whole number from 1 to 100000', help: 'most in-flight executions checked per cycle' },
  dispatchConcurrency: { variable: 'TICKRUN_DISPATCH_CONCURRENCY', accepts: 'a whole number from 1 to 1000', help: 'executions started at once' },
  statusConcurrency: { variable: 'TICKRUN_STATUS_CONCURRENCY', accepts: 'a whole number from 1 to 1000', help: 'status checks at once' },
  poolSize: { variable: 'TICKRUN_POOL_SIZE', accepts: 'a whole number from 1 to 100', help: 'database connections' },
  budgetMs: { variable: 'TICKRUN_BUDGET_MS', accepts: 'a whole number of milliseconds from 0 (one cycle) to 3600000', help: 'how long one tick keeps cycling' },
  apiTimeoutMs: { variable: 'TICKRUN_API_TIMEOUT', accepts: 'a duration from 100ms to 10m', help: 'deadline of each executor API call' },
  claimLeaseMs: { variable: 'TICKRUN_CLAIM_LEASE', accepts: 'a duration from 1s to 1h', help: 'how long a claimed task is held before another tick may take it back' },
};

/** A duration as workflow files write it, or `0`; NaN when it is neither. */
function durationOrNaN(raw: string): number {
  if (raw.trim() === '0') return 0;
  try {
    return parseDuration(raw);
  } catch {
    return NaN;
  }
}

function readDuration(env: NodeJS.ProcessEnv, key: keyof typeof SETTINGS, min: number, max: number, fallback: number): number {
  const { variable, accepts } = SETTINGS[key];
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  const ms = durationOrNaN(raw);
  if (!Number.isFinite(ms) || ms < min || ms > max) {
    throw new ConfigError(`${variable}=${JSON.stringify(raw)} is not valid: it accepts ${accepts}`);
  }
  return ms;
}

function readInt(env: NodeJS.ProcessEnv, key: keyof typeof SETTINGS, min: number, max: number, fallback: number): number {
  const { variable, accepts } = SETTINGS[key];
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  const n = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${variable}=${JSON.stringify(raw)} is not valid: it accepts ${accepts}`);
  }
  return n;
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
  const emulatorHost = env.CLOUD_RUN_EMULATOR_HOST || undefined;
  if (emulatorHost && !/^[\w.-]+:\d+$/.test(emulatorHost) && !/^\[[\d:a-f]+\]:\d+$/i.test(emulatorHost)) {
    throw new ConfigError(`CLOUD_RUN_EMULATOR_HOST=${JSON.stringify(emulatorHost)} is not valid: it accepts host:port`);
  }
  const config: Config = {
    profile: profileName,
    pollIntervalMs: readDuration(env, 'pollIntervalMs', 100, 3_600_000, p.pollIntervalMs),
    batchSize: readInt(env, 'batchSize', 1, 10_000, p.batchSize),
    statusBatchSize: readInt(env, 'statusBatchSize', 1, 100_000, p.statusBatchSize),
    dispatchConcurrency: readInt(env, 'dispatchConcurrency', 1, 1000, p.dispatchConcurrency),
    statusConcurrency: readInt(env, 'statusConcurrency', 1, 1000, p.statusConcurrency),
    poolSize: readInt(env, 'poolSize', 1, 100, p.poolSize),
    budgetMs: readInt(env, 'budgetMs', 0, 3_600_000, 0),
    apiTimeoutMs: readDuration(env, 'apiTimeoutMs', 100, 600_000, 30_000),
    claimLeaseMs: readDuration(env, 'claimLeaseMs', 1000, 3_600_000, 120_000),
    home,
    database: readDatabase(env, home),
    cloudRun: {
      emulatorHost,
      defaultProject: env.GOOGLE_CLOUD_PROJECT || env.GCLOUD_PROJECT || undefined,
      defaultRegion: env.TICKRUN_REGION || env.GOOGLE_CLOUD_REGION || undefined,
    },
  };
  // A dispatch must be able to end, with a margin, before its claim's lease does (steps/dispatch.ts).
  if (config.claimLeaseMs < config.apiTimeoutMs + 2000) {
    throw new ConfigError(`TICKRUN_CLAIM_LEASE (${config.claimLeaseMs} ms) must be at least TICKRUN_API_TIMEOUT (${config.apiTimeoutMs} ms) plus 2s`);
  }
  return config;
}

/** Parses a duration option given on the command line (`--budget 50s`) with the same rules as the variables. */
export function parseDurationOption(name: string, raw: string): number {
  const ms = durationOrNaN(raw);
  if (Number.isNaN(ms)) throw new ConfigError(`${name} ${JSON.stringify(raw)} is not valid: it accepts a duration such as 50s, 2m or 500ms`);
  return ms;
}
