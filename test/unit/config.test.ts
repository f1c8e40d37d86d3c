import { parseConfig, PROFILES } from '../../shared/config';
import { ConfigError } from '../../shared/errors';

describe('parseConfig', () => {
  it.each(Object.entries(PROFILES))('profile %s gives the design note values', (name, values) => {
    const c = parseConfig({ TICKRUN_PROFILE: name, DATABASE_URL: 'postgres://x/y' });
    expect(c).toMatchObject({ profile: name, ...values });
  });

  it('uses the default profile when none is set', () => {
    expect(parseConfig({}, '/w')).toMatchObject({ profile: 'default', pollIntervalMs: 5000, batchSize: 100, statusBatchSize: 1000, dispatchConcurrency: 10, statusConcurrency: 50, poolSize: 10, home: '/w/.tickrun' });
  });

  it.each([
    ['TICKRUN_POLL_INTERVAL', '750ms', { pollIntervalMs: 750 }],
    ['TICKRUN_BATCH_SIZE', '7', { batchSize: 7 }],
    ['TICKRUN_STATUS_BATCH_SIZE', '25000', { statusBatchSize: 25000 }],
    ['TICKRUN_DISPATCH_CONCURRENCY', '3', { dispatchConcurrency: 3 }],
    ['TICKRUN_STATUS_CONCURRENCY', '200', { statusConcurrency: 200 }],
    ['TICKRUN_POOL_SIZE', '2', { poolSize: 2 }],
    ['TICKRUN_BUDGET_MS', '50000', { budgetMs: 50000 }],
    ['TICKRUN_DISPATCH_TIMEOUT', '2s', { timeouts: { dispatch: 2000, read: 5000, list: 10_000 } }],
    ['TICKRUN_READ_TIMEOUT', '4s', { timeouts: { dispatch: 3000, read: 4000, list: 10_000 } }],
    ['TICKRUN_LIST_TIMEOUT', '1m', { timeouts: { dispatch: 3000, read: 5000, list: 60_000 } }],
    ['TICKRUN_API_TIMEOUT', '4s', { timeouts: { dispatch: 4000, read: 4000, list: 4000 } }],
    ['TICKRUN_CLAIM_LEASE', '5m', { claimLeaseMs: 300000 }],
  ])('%s=%s overrides the profile', (variable, value, expected) => {
    expect(parseConfig({ TICKRUN_PROFILE: 'high_throughput', [variable]: value })).toMatchObject(expected);
  });

  it.each([
    ['TICKRUN_PROFILE', 'fast', /TICKRUN_PROFILE="fast" is not valid: it accepts optimized, default, high_throughput/],
    ['TICKRUN_BATCH_SIZE', 'ten', /TICKRUN_BATCH_SIZE="ten" is not valid: it accepts a whole number from 1 to 10000/],
    ['TICKRUN_BATCH_SIZE', '0', /TICKRUN_BATCH_SIZE="0"/],
    ['TICKRUN_STATUS_BATCH_SIZE', '100001', /TICKRUN_STATUS_BATCH_SIZE="100001" is not valid: it accepts a whole number from 1 to 100000/],
    ['TICKRUN_DISPATCH_CONCURRENCY', '-1', /TICKRUN_DISPATCH_CONCURRENCY="-1" is not valid/],
    ['TICKRUN_STATUS_CONCURRENCY', '1.5', /TICKRUN_STATUS_CONCURRENCY="1.5" is not valid/],
    ['TICKRUN_POOL_SIZE', '1000', /TICKRUN_POOL_SIZE="1000" is not valid: it accepts a whole number from 1 to 100/],
    ['TICKRUN_POLL_INTERVAL', '5', /TICKRUN_POLL_INTERVAL="5" is not valid: it accepts a duration/],
    ['TICKRUN_POLL_INTERVAL', '10ms', /TICKRUN_POLL_INTERVAL="10ms" is not valid/],
    ['TICKRUN_BUDGET_MS', '1m', /TICKRUN_BUDGET_MS="1m" is not valid: it accepts a whole number of milliseconds/],
    ['TICKRUN_BUDGET_MS', '3600001', /TICKRUN_BUDGET_MS="3600001" is not valid: it accepts a whole number of milliseconds from 0 to 3600000$/],
    ['TICKRUN_POLL_INTERVAL', '2h', /TICKRUN_POLL_INTERVAL="2h" is not valid: it accepts a duration from 100ms to 1h$/],
    ['TICKRUN_CLAIM_LEASE', '999ms', /TICKRUN_CLAIM_LEASE="999ms" is not valid: it accepts a duration from 1s to 1h$/],
    ['TICKRUN_API_TIMEOUT', 'soon', /TICKRUN_API_TIMEOUT="soon" is not valid/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL is not valid: it accepts a postgres:\/\//],
    ['INSTANCE_CONNECTION_NAME', 'just-a-name', /INSTANCE_CONNECTION_NAME is not valid: it accepts PROJECT:REGION:INSTANCE/],
    ['CLOUD_RUN_EMULATOR_HOST', 'http://localhost:8080', /CLOUD_RUN_EMULATOR_HOST="http:\/\/localhost:8080" is not valid: it accepts host:port/],
  ])('%s=%s is refused with a message naming it', (variable, value, message) => {
    expect(() => parseConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => parseConfig({ [variable]: value })).toThrow(message);
  });

  it('finds the database in the contract order: DATABASE_URL, then Cloud SQL, then the local one', () => {
    const cloudsql = { INSTANCE_CONNECTION_NAME: 'p:us-central1:db', DB_USER: 'tick@p.iam', DB_NAME: 'tickrun' };
    expect(parseConfig({ ...cloudsql, DATABASE_URL: 'postgres://h/d' }).database).toEqual({ kind: 'url', url: 'postgres://h/d' });
    expect(parseConfig(cloudsql).database).toEqual({ kind: 'cloudsql', instanceConnectionName: 'p:us-central1:db', user: 'tick@p.iam', database: 'tickrun' });
    expect(parseConfig({}, '/w').database).toEqual({ kind: 'local', home: '/w/.tickrun' });
    expect(() => parseConfig({ INSTANCE_CONNECTION_NAME: 'p:r:i' })).toThrow(/needs DB_USER .* and DB_NAME/);
  });

  it('gives each kind of call its own deadline, a short one to jobs.run, and a lease of 8 s', () => {
    expect(parseConfig({})).toMatchObject({ timeouts: { dispatch: 3000, read: 5000, list: 10_000 }, claimLeaseMs: 8000 });
    // TICKRUN_API_TIMEOUT sets every call's deadline, and a call's own variable still wins.
    expect(parseConfig({ TICKRUN_API_TIMEOUT: '3s', TICKRUN_LIST_TIMEOUT: '30s' }).timeouts).toEqual({ dispatch: 3000, read: 3000, list: 30_000 });
  });

  it('refuses a claim lease that a dispatch at its deadline could outlast between two renewals', () => {
    expect(() => parseConfig({ TICKRUN_DISPATCH_TIMEOUT: '2m' })).toThrow(
      new ConfigError('TICKRUN_CLAIM_LEASE (8s) must be at least 1.5 × (TICKRUN_DISPATCH_TIMEOUT + 1s) = 3m1s500ms'),
    );
    expect(() => parseConfig({ TICKRUN_API_TIMEOUT: '10s' })).toThrow(/TICKRUN_CLAIM_LEASE \(8s\) must be at least .* = 16s500ms/);
    expect(parseConfig({ TICKRUN_DISPATCH_TIMEOUT: '2m', TICKRUN_CLAIM_LEASE: '3m1500ms' })).toMatchObject({ claimLeaseMs: 181_500 });
  });

  it('reads the Cloud Run emulator host', () => {
    expect(parseConfig({ CLOUD_RUN_EMULATOR_HOST: '127.0.0.1:8123' }).cloudRun.emulatorHost).toBe('127.0.0.1:8123');
  });
});
