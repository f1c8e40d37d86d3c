import http from 'node:http';
import { setLogSink } from '../../shared/log';
import { job, startDashboard } from '../helpers/dashboard';
import { createHarness, type Harness } from '../helpers/harness';
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy';
import { forwardedIdToken, serveDashboardFunction, startServicesProxy, type DashboardFunction, type ServicesProxy } from '../helpers/servicesProxy';

/** An answer through the proxy: status, headers, and the body parsed when it is JSON. */
interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/** A request to the proxy's port with exactly these headers, Host included, as a browser sends it. */
function send(proxy: ServicesProxy, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.port, method, path, headers: { ...(body !== undefined && { 'content-length': String(Buffer.byteLength(body)) }), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        const json = String(res.headers['content-type'] ?? '').startsWith('application/json');
        resolve({ status: res.statusCode!, headers: res.headers, body: json ? JSON.parse(text) : text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The JSON log lines a function wrote, parsed; other output (the framework's own) is left out. */
function logEntries(fn: DashboardFunction): any[] {
  return fn.logs().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

/**
 * The entries that `pick` selects, once there are `count` of them: the function's stderr reaches this
 * process on its own pipe, after the answer may have, so a line is waited for (2 s at most).
 */
async function waitForEntries(fn: DashboardFunction, pick: (e: any) => boolean, count = 1): Promise<any[]> {
  for (let i = 0; i < 40 && logEntries(fn).filter(pick).length < count; i++) await new Promise((r) => setTimeout(r, 50));
  return logEntries(fn).filter(pick);
}

// A page served as http://evil.example:PORT whose name then resolves to 127.0.0.1: the browser takes the
// proxy for that page's own origin, so its fetch is same-origin and may carry any header without a preflight.
const rebinding = (proxy: ServicesProxy) => ({
  host: `evil.example:${proxy.port}`,
  origin: `http://evil.example:${proxy.port}`,
  'sec-fetch-site': 'same-origin',
  'sec-fetch-mode': 'cors',
});

// The dashboard's own page, opened at the proxy's address: Chromium sends Origin on every POST.
const ownPage = (proxy: ServicesProxy) => ({
  host: `localhost:${proxy.port}`,
  origin: proxy.url,
  'sec-fetch-site': 'same-origin',
  'sec-fetch-mode': 'cors',
});

const ACTION = { 'content-type': 'application/json', 'x-tickrun-action': '1' };

describe('the dashboard function behind `gcloud run services proxy`', () => {
  let h: Harness;
  let fn: DashboardFunction;
  let proxy: ServicesProxy;
  const runCount = async () => (await h.db.pool.query('select count(*)::int as n from runs')).rows[0].n;
  const runStatus = async (id: string) => (await h.db.pool.query('select status from runs where id = $1', [id])).rows[0].status;

  beforeAll(async () => {
    h = await createHarness();
    await h.apply(`name: fn\ntasks:\n  a: { job: ${job('a')} }\n`);
    fn = await serveDashboardFunction({ DATABASE_URL: h.db.url });
    proxy = await startServicesProxy(fn.url);
  });
  afterAll(async () => {
    await proxy?.close();
    fn?.stop();
    await h?.close();
  });

  describe('a DNS-rebinding page on the proxy port', () => {
    it('cannot trigger a run: 403 naming the Origin, and no run is made', async () => {
      const before = await runCount();
      const r = await send(proxy, 'POST', '/api/runs', { ...rebinding(proxy), ...ACTION }, JSON.stringify({ workflow: 'fn' }));
      expect([r.status, r.body.error]).toEqual([403, expect.stringMatching(/Origin "http:\/\/evil\.example:\d+" is not the address of `gcloud run services proxy`/)]);
      expect(await runCount()).toBe(before);
    });

    it('cannot cancel a run: 403, and the run is still pending', async () => {
      const runId = await h.trigger('fn');
      const r = await send(proxy, 'POST', `/api/runs/${runId}/cancel`, { ...rebinding(proxy), ...ACTION }, '{}');
      expect(r.status).toBe(403);
      expect(await runStatus(runId)).toBe('pending');
      await h.db.pool.query('delete from runs where id = $1', [runId]);
    });

    it('cannot pass with Sec-Fetch-Site alone (no Origin), nor with an Origin on a loopback name without a port', async () => {
      const { origin: _origin, ...noOrigin } = rebinding(proxy);
      expect((await send(proxy, 'POST', '/api/runs', { ...noOrigin, ...ACTION }, '{"workflow":"fn"}')).status).toBe(403);
      const portless = await send(proxy, 'POST', '/api/runs', { ...ownPage(proxy), origin: 'http://localhost', ...ACTION }, '{"workflow":"fn"}');
      expect([portless.status, portless.body.error]).toEqual([403, expect.stringMatching(/Origin "http:\/\/localhost" is not the address of `gcloud run services proxy`/)]);
      expect(await runCount()).toBe(0);
    });
  });

  describe('reads of the JSON API', () => {
    // A same-origin GET carries no Origin; the dashboard's page sends its Referer (referrer-policy same-origin).
    const pageRead = (proxy: ServicesProxy) => ({ host: `localhost:${proxy.port}`, referer: `${proxy.url}/`, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' });
    let runId: string;
    beforeAll(async () => {
      runId = await h.trigger('fn', { secret: 'launch-codes' });
    });
    afterAll(() => h.db.pool.query('delete from runs where id = $1', [runId]));

    it.each(['/api/runs', '/api/workflows', 'RUN'])('a rebinding page cannot read %s: 403, no data', async (path) => {
      const r = await send(proxy, 'GET', path === 'RUN' ? `/api/runs/${runId}` : path, { host: `evil.example:${proxy.port}`, referer: `http://evil.example:${proxy.port}/`, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' });
      expect(r.status).toBe(403);
      expect(r.body.error).toMatch(/reads of the API are answered only to the dashboard's own page/);
      expect(JSON.stringify(r.body)).not.toMatch(/launch-codes|"fn"|runs"/);
      const noReferer = await send(proxy, 'GET', path === 'RUN' ? `/api/runs/${runId}` : path, { host: `evil.example:${proxy.port}`, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' });
      expect(noReferer.status).toBe(403);
    });

    it("the dashboard's own page reads them", async () => {
      const list = await send(proxy, 'GET', '/api/runs', pageRead(proxy));
      expect([list.status, list.body.runs.map((r: any) => r.id)]).toEqual([200, [runId]]);
      expect((await send(proxy, 'GET', `/api/runs/${runId}`, pageRead(proxy))).body.run.params).toEqual({ secret: 'launch-codes' });
      expect((await send(proxy, 'GET', '/api/workflows', pageRead(proxy))).status).toBe(200);
    });

    // Chromium sends no Sec-Fetch-* to an origin that is not potentially trustworthy (http://evil.example is
    // not; http://localhost is), and a page may drop its Referer (fetch's referrerPolicy: 'no-referrer').
    it.each([
      ['its Referer', { referer: 'REFERER' }],
      ['no Referer', {}],
    ])('a rebinding page as Chromium sends its GET over http (no Sec-Fetch-*, %s) cannot read', async (_what, extra: Record<string, string>) => {
      const headers = { host: `evil.example:${proxy.port}`, ...(extra.referer && { referer: `http://evil.example:${proxy.port}/` }) };
      const r = await send(proxy, 'GET', `/api/runs/${runId}`, headers);
      expect(r.status).toBe(403);
      expect(JSON.stringify(r.body)).not.toMatch(/launch-codes/);
    });

    it('an address typed in the browser (Sec-Fetch-Site: none) reads them; curl does when it names the proxy in Referer', async () => {
      expect((await send(proxy, 'GET', '/api/runs', { host: `localhost:${proxy.port}`, 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate' })).status).toBe(200);
      expect((await send(proxy, 'GET', '/api/runs', { host: `localhost:${proxy.port}`, referer: 'http://localhost:8080/' })).status).toBe(200);
      const bare = await send(proxy, 'GET', '/api/runs', { host: `localhost:${proxy.port}` });
      expect([bare.status, bare.body.error]).toEqual([403, expect.stringMatching(/e\.g\. Referer: http:\/\/localhost:8080\//)]);
    });

    it("serves the page itself to anyone who reaches it (it holds no data) with a referrer policy that lets its own requests name it", async () => {
      const page = await send(proxy, 'GET', '/', { host: `evil.example:${proxy.port}`, 'sec-fetch-site': 'none' });
      expect(page.status).toBe(200);
      expect(page.headers['referrer-policy']).toBe('same-origin');
    });
  });

  describe('each action is logged with the principal who asked for it', () => {
    const isAction = (e: any) => typeof e.action === 'string';
    const act = (p: ServicesProxy, path: string, body = '{}') => send(p, 'POST', path, { ...ownPage(p), ...ACTION }, body);

    it('trigger, cancel and retry: one INFO entry each with the action, its target, the answer and the email of the ID token', async () => {
      const seen = (await waitForEntries(fn, isAction, 0)).length;
      const made = await act(proxy, '/api/runs', JSON.stringify({ workflow: 'fn' }));
      const { runId } = made.body;
      expect((await act(proxy, `/api/runs/${runId}/cancel`)).status).toBe(200);
      expect((await act(proxy, `/api/runs/${runId}/retry`)).status).toBe(409);
      const entries = (await waitForEntries(fn, isAction, seen + 3)).slice(seen);
      const labels = 'logging.googleapis.com/labels';
      expect(entries).toEqual([
        { severity: 'INFO', message: `dashboard action trigger by ada@example.com: 201`, action: 'trigger', principal: 'ada@example.com', status: 201, [labels]: { workflow: 'fn', run_id: runId } },
        { severity: 'INFO', message: `dashboard action cancel by ada@example.com: 200`, action: 'cancel', principal: 'ada@example.com', status: 200, [labels]: { run_id: runId } },
        { severity: 'INFO', message: `dashboard action retry by ada@example.com: 409`, action: 'retry', principal: 'ada@example.com', status: 409, [labels]: { run_id: runId } },
      ]);
      await h.db.pool.query('delete from runs where id = $1', [runId]);
    });

    it("names a token without an email by its subject, and a request without a token as unknown", async () => {
      const noEmail = await startServicesProxy(fn.url, { token: forwardedIdToken({ email: undefined, email_verified: undefined, sub: '113720942805117307188' }) });
      const noToken = await startServicesProxy(fn.url, { token: null });
      try {
        const seen = (await waitForEntries(fn, isAction, 0)).length;
        await act(noEmail, '/api/runs/00000000-0000-4000-8000-000000000000/cancel');
        await act(noToken, '/api/runs/00000000-0000-4000-8000-000000000000/cancel');
        const entries = (await waitForEntries(fn, isAction, seen + 2)).slice(seen);
        expect(entries.map((e) => [e.principal, e.status])).toEqual([['sub:113720942805117307188', 404], ['unknown', 404]]);
      } finally {
        await noEmail.close();
        await noToken.close();
      }
    });

    it('logs an action refused by the guard as a WARNING with the principal and the reason', async () => {
      const seen = (await waitForEntries(fn, isAction, 0)).length;
      await send(proxy, 'POST', '/api/runs', { ...rebinding(proxy), ...ACTION }, '{"workflow":"fn"}');
      const [entry] = (await waitForEntries(fn, isAction, seen + 1)).slice(seen);
      expect(entry).toMatchObject({ severity: 'WARNING', action: 'trigger', principal: 'ada@example.com', status: 403, reason: expect.stringMatching(/Origin "http:\/\/evil\.example:\d+"/) });
    });
  });

  it.each([
    ['a list', 'GET', '/api/runs', 200],
    ['a bad parameter', 'GET', '/api/runs?limit=0', 400],
    ['an unknown run', 'GET', '/api/runs/00000000-0000-4000-8000-000000000000', 404],
    ['an unknown path', 'GET', '/api/nothing', 404],
    ['a wrong method', 'DELETE', '/api/runs', 405],
    ['a refused action', 'POST', '/api/runs', 403],
  ])('answers JSON with X-Content-Type-Options: nosniff: %s (%s %s, %i)', async (_what, method, path, status) => {
    const r = await send(proxy, method, path, { host: `localhost:${proxy.port}`, referer: `${proxy.url}/`, ...(method === 'POST' && { 'content-type': 'application/json' }) }, method === 'POST' ? '{}' : undefined);
    expect(r.status).toBe(status);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
  });

  describe("the dashboard's own page at http://localhost:PORT", () => {
    it('triggers a run and cancels it', async () => {
      const made = await send(proxy, 'POST', '/api/runs', { ...ownPage(proxy), ...ACTION }, JSON.stringify({ workflow: 'fn', params: { day: '2026-03-01' } }));
      expect(made.status).toBe(201);
      const { runId } = made.body;
      expect(await runStatus(runId)).toBe('pending');
      const cancelled = await send(proxy, 'POST', `/api/runs/${runId}/cancel`, { ...ownPage(proxy), ...ACTION }, '{}');
      expect(cancelled).toMatchObject({ status: 200, body: { cancelled: true, status: 'cancelled' } });
      expect(await runStatus(runId)).toBe('cancelled');
      await h.db.pool.query('delete from runs where id = $1', [runId]);
    });

    it('at 127.0.0.1 or [::1] too, whatever the port', async () => {
      for (const origin of ['http://127.0.0.1:9000', 'http://[::1]:8080']) {
        const r = await send(proxy, 'POST', '/api/runs', { ...ownPage(proxy), origin, ...ACTION }, '{"workflow":"fn"}');
        expect(r.status).toBe(201);
        await h.db.pool.query('delete from runs where id = $1', [r.body.runId]);
      }
    });
  });
});

describe('a failure inside the dashboard function', () => {
  let h: Harness;
  let db: TcpProxy;
  let fn: DashboardFunction;
  let proxy: ServicesProxy;
  const internal = { error: 'internal error', ref: expect.stringMatching(/^[0-9a-f]{8}$/) };
  const page = () => ({ host: `localhost:${proxy.port}`, referer: `${proxy.url}/`, 'sec-fetch-site': 'same-origin' });

  beforeAll(async () => {
    h = await createHarness();
    await h.apply(`name: fn\ntasks:\n  a: { job: ${job('a')} }\n`);
    // The function reaches the database through a cut-able hop, to lose it on purpose.
    const target = new URL(h.db.url);
    db = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
    target.port = String(db.port);
    fn = await serveDashboardFunction({ DATABASE_URL: target.toString() });
    proxy = await startServicesProxy(fn.url);
  });
  afterAll(async () => {
    await proxy?.close();
    fn?.stop();
    await db?.close();
    await h?.close();
  });

  /** The one ERROR entry logged under `ref`. */
  async function logged(ref: string) {
    const entries = await waitForEntries(fn, (e) => e['logging.googleapis.com/labels']?.ref === ref);
    expect(entries.map((e) => e.severity)).toEqual(['ERROR']);
    return entries[0];
  }

  it('a read the schema cannot answer: 500 with a reference, no SQL, table or column name; the log has the error', async () => {
    const runId = await h.trigger('fn');
    await h.db.pool.query('alter table runs rename column params to params_moved');
    try {
      const r = await send(proxy, 'GET', `/api/runs/${runId}`, page());
      expect(r.status).toBe(500);
      expect(r.body).toEqual(internal);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      const entry = await logged(r.body.ref);
      expect(entry.message).toMatch(new RegExp(`^dashboard GET /api/runs/${runId} failed \\(ref ${r.body.ref}\\): column .*params.* does not exist`));
      expect(entry.error).toMatchObject({ code: '42703' });
      expect(entry.stack_trace).toMatch(/^error: column .*params.* does not exist\n\s+at /);
    } finally {
      await h.db.pool.query('alter table runs rename column params_moved to params');
    }
  });

  it('an action on a missing table: 500 with a reference, and no run is made', async () => {
    const before = (await h.db.pool.query('select count(*)::int as n from runs')).rows[0].n;
    await h.db.pool.query('alter table runs rename to runs_moved');
    try {
      const r = await send(proxy, 'POST', '/api/runs', { ...page(), origin: proxy.url, 'content-type': 'application/json', 'x-tickrun-action': '1' }, '{"workflow":"fn"}');
      expect([r.status, r.body]).toEqual([500, internal]);
      expect((await logged(r.body.ref)).message).toMatch(/failed \(ref [0-9a-f]{8}\): relation "runs" does not exist/);
    } finally {
      await h.db.pool.query('alter table runs_moved rename to runs');
    }
    expect((await h.db.pool.query('select count(*)::int as n from runs')).rows[0].n).toBe(before);
  });

  it('the database out of reach: 500 with a reference, not the address it tried', async () => {
    db.cut();
    try {
      const r = await send(proxy, 'GET', '/api/runs', page());
      expect([r.status, r.body]).toEqual([500, internal]);
      expect((await logged(r.body.ref)).message).toMatch(/failed \(ref [0-9a-f]{8}\): .*(ECONNREFUSED|ECONNRESET|terminated|closed)/i);
    } finally {
      db.restore();
    }
    expect((await send(proxy, 'GET', '/api/runs', page())).status).toBe(200);
  });

  it('keeps the 4xx messages, which are meant for the user', async () => {
    const r = await send(proxy, 'GET', '/api/runs/12345', page());
    expect(r).toMatchObject({ status: 400, body: { error: '"12345" is not a run id: run ids are UUIDs, as `tickrun status` lists them' } });
  });
});

describe('a dashboard function that cannot start its instance', () => {
  it('answers 500 with a reference, not the configuration error, which goes to the log', async () => {
    const fn = await serveDashboardFunction({ DATABASE_URL: 'postgres://tickrun@127.0.0.1:1/tickrun', TICKRUN_POOL_SIZE: 'lots' });
    try {
      const r = await fetch(fn.url + '/api/runs');
      const body = (await r.json()) as any;
      expect([r.status, body]).toEqual([500, { error: 'internal error', ref: expect.stringMatching(/^[0-9a-f]{8}$/) }]);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      const [entry] = await waitForEntries(fn, (e) => e['logging.googleapis.com/labels']?.ref === body.ref);
      expect(entry).toMatchObject({ severity: 'ERROR', message: expect.stringMatching(/TICKRUN_POOL_SIZE/) });
    } finally {
      fn.stop();
    }
  });
});

describe('the local dashboard (`tickrun dev`)', () => {
  it('logs its actions with the principal "local", whatever token a request carries (nothing checked it)', async () => {
    const h = await createHarness();
    const lines: string[] = [];
    setLogSink((line) => lines.push(line));
    const d = await startDashboard(h);
    try {
      await h.apply(`name: fn\ntasks:\n  a: { job: ${job('a')} }\n`);
      const made = await d.action('/api/runs', { workflow: 'fn' }, { authorization: `Bearer ${forwardedIdToken({ email: 'mallory@example.com' })}` });
      expect(made.status).toBe(201);
      const entries = lines.map((l) => JSON.parse(l)).filter((e) => e.action);
      expect(entries).toEqual([expect.objectContaining({ severity: 'INFO', action: 'trigger', principal: 'local', status: 201 })]);
    } finally {
      setLogSink(null);
      await d.close();
      await h.close();
    }
  });
});
