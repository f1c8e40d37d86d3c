import type { Duplex } from 'node:stream';
import { parseConfig } from '../../shared/config';
import { openPool, poolConfig } from '../../shared/db';

// The Cloud SQL connector asks the Admin API for the instance's address and an ephemeral certificate,
// so it needs the network. Here it is replaced by a fake that records what it was asked and hands back
// a stream factory, as the real one does: what is checked is the pool configuration built around it.

interface GetOptionsCall {
  instanceConnectionName: string;
  authType: string;
  ipType: string;
}

const calls: { getOptions: GetOptionsCall[]; close: number; constructed: number } = { getOptions: [], close: 0, constructed: 0 };
const stream = (): Duplex => {
  throw new Error('no connection is opened in these tests');
};

jest.mock('@google-cloud/cloud-sql-connector', () => {
  const actual = jest.requireActual('@google-cloud/cloud-sql-connector');
  return {
    AuthTypes: actual.AuthTypes,
    IpAddressTypes: actual.IpAddressTypes,
    Connector: class {
      constructor() {
        calls.constructed++;
      }
      async getOptions(opts: GetOptionsCall) {
        calls.getOptions.push(opts);
        return { stream };
      }
      close() {
        calls.close++;
      }
    },
  };
});

const CLOUD_SQL = { INSTANCE_CONNECTION_NAME: 'my-project:us-central1:tickrun', DB_USER: 'tickrun-tick@my-project.iam', DB_NAME: 'tickrun' };

beforeEach(() => {
  calls.getOptions = [];
  calls.close = 0;
  calls.constructed = 0;
});

describe('the Cloud SQL connector path', () => {
  it('asks the connector for the instance with IAM authentication over its public IP', async () => {
    await poolConfig(parseConfig(CLOUD_SQL));
    expect(calls.getOptions).toEqual([{ instanceConnectionName: 'my-project:us-central1:tickrun', authType: 'IAM', ipType: 'PUBLIC' }]);
  });

  it('connects as DB_USER to DB_NAME through the connector stream, with no password anywhere', async () => {
    const { pool } = await poolConfig(parseConfig({ ...CLOUD_SQL, TICKRUN_PROFILE: 'optimized' }));
    expect(pool).toMatchObject({ user: 'tickrun-tick@my-project.iam', database: 'tickrun', max: 5 });
    expect(pool.stream).toBe(stream);
    for (const key of ['password', 'connectionString', 'host', 'port', 'ssl']) expect([key, (pool as Record<string, unknown>)[key]]).toEqual([key, undefined]);
  });

  it('sizes the pool from the profile, and from TICKRUN_POOL_SIZE over it', async () => {
    expect((await poolConfig(parseConfig({ ...CLOUD_SQL, TICKRUN_PROFILE: 'high_throughput' }))).pool.max).toBe(20);
    expect((await poolConfig(parseConfig({ ...CLOUD_SQL, TICKRUN_PROFILE: 'optimized', TICKRUN_POOL_SIZE: '3' }))).pool.max).toBe(3);
  });

  it('builds the pool from the same settings as a local or URL database', async () => {
    const settings = (p: object) => {
      const { user, database, stream: _s, connectionString: _c, host: _h, port: _p, password: _w, ...rest } = p as Record<string, unknown>;
      return rest;
    };
    const viaConnector = (await poolConfig(parseConfig({ ...CLOUD_SQL, TICKRUN_POOL_SIZE: '7' }))).pool;
    const viaUrl = (await poolConfig(parseConfig({ DATABASE_URL: 'postgres://u:p@localhost:5432/tickrun', TICKRUN_POOL_SIZE: '7' }))).pool;
    expect(settings(viaConnector)).toEqual(settings(viaUrl));
    expect(settings(viaConnector)).toMatchObject({ max: 7, application_name: 'tickrun' });
  });

  it('prefers DATABASE_URL and leaves the connector alone when it is set', async () => {
    const { pool, close } = await poolConfig(parseConfig({ ...CLOUD_SQL, DATABASE_URL: 'postgres://u:p@localhost:5432/x' }));
    expect(pool.connectionString).toBe('postgres://u:p@localhost:5432/x');
    expect(close).toBeUndefined();
    expect(calls.constructed).toBe(0);
  });

  it('closes the connector with the pool, without having opened a connection', async () => {
    const pool = await openPool(parseConfig(CLOUD_SQL));
    expect(calls.constructed).toBe(1);
    expect(pool.totalCount).toBe(0);
    await pool.end();
    expect(calls.close).toBe(1);
  });

  it('needs DB_USER and DB_NAME with INSTANCE_CONNECTION_NAME', () => {
    expect(() => parseConfig({ INSTANCE_CONNECTION_NAME: CLOUD_SQL.INSTANCE_CONNECTION_NAME, DB_NAME: 'tickrun' })).toThrow(/needs DB_USER/);
    expect(() => parseConfig({ INSTANCE_CONNECTION_NAME: CLOUD_SQL.INSTANCE_CONNECTION_NAME, DB_USER: 'u' })).toThrow(/DB_NAME/);
  });
});
