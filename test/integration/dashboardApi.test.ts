import http from 'node:http';
import type { RunStatus } from '../../shared/lifecycle';
import { runListQuery } from '../../shared/model/runs';
import { triggerRun } from '../../shared/operator/trigger';
import { tick } from '../../shared/tick';
import { behaviourFromEnv, startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { etlWorkflow, job, startDashboard, type DashboardClient } from '../helpers/dashboard';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { createHarness, type Harness } from '../helpers/harness';
import { serveDashboardFunction, type DashboardFunction } from '../helpers/servicesProxy';

const ETL = etlWorkflow('extract, transform, load');
// A run that fails: a fails both attempts, b and c are skipped because of it, d runs on its own.
const BREAKS = `name: breaks
defaults: { backoff: 50ms }
tasks:
  a: { job: ${job('a')}, retries: 1, env: { EMU_FAIL: "1" } }
  b: { job: ${job('b')}, depends_on: [a] }
  c: { job: ${job('c')}, depends_on: [b] }
  d: { job: ${job('d')} }
`;
const SLOW = `name: slow\nconcurrency: 3\ntasks:\n  sleep: { job: ${job('sleep')}, env: { EMU_DURATION_MS: "600000" } }\n`;
// Hourly at half an hour from now: no tick of this file comes near a slot, whose run would join the
// listings (at "0 * * * *" a run at the top of the hour did).
const SLOT_MINUTE = (new Date().getUTCMinutes() + 30) % 60;
const HOURLY = `name: hourly\nschedule: "${SLOT_MINUTE} * * * *"\ntasks:\n  a: { job: ${job('a')} }\n`;

describe('the dashboard API over a real database', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  let d: DashboardClient;
  let etlRun: string;
  let failedRun: string;

  beforeAll(async () => {
    emu = await startCloudRunEmulator();
    h = await createHarness({ CLOUD_RUN_EMULATOR_HOST: emu.host });
    for (const yaml of [ETL, BREAKS, SLOW, HOURLY]) await h.apply(yaml);
    etlRun = (await triggerRun(h.db.pool, 'etl', { idempotencyKey: 'nightly-1', params: { day: '2026-03-01' } })).runId;
    expect((await h.runToEnd(etlRun)).status).toBe('success');
    failedRun = await h.trigger('breaks');
    expect((await h.runToEnd(failedRun)).status).toBe('failed');
    d = await startDashboard(h);
  });
  afterAll(async () => {
    await d?.close();
    await h?.close();
    await emu?.stop();
  });

  describe('GET /api/runs', () => {
    it('lists runs latest first with trigger, times, duration and task counts', async () => {
      const scheduled = (await triggerRun(h.db.pool, 'hourly', { triggeredBy: 'schedule' })).runId;
      const r = await d.get('/api/runs');
      expect(r.status).toBe(200);
      expect(r.headers.get('cache-control')).toBe('no-store');
      expect(r.body.nextCursor).toBeNull();
      expect(r.body.runs.map((x: any) => x.id)).toEqual([scheduled, failedRun, etlRun]);
      const [sched, failed, etl] = r.body.runs;
      expect(sched).toMatchObject({ workflow: 'hourly', status: 'pending', trigger: 'schedule', startedAt: null, durationMs: null, tasks: {} });
      expect(failed).toMatchObject({ workflow: 'breaks', status: 'failed', trigger: 'manual', idempotencyKey: null, tasks: { failed: 1, skipped: 2, success: 1 } });
      expect(failed.error).toMatch(/^a\[0\]: /);
      expect(etl).toMatchObject({ workflow: 'etl', status: 'success', trigger: 'key', idempotencyKey: 'nightly-1', tasks: { success: 4 }, error: null });
      expect(etl.durationMs).toBe(Date.parse(etl.finishedAt) - Date.parse(etl.startedAt));
      expect(Object.keys(etl).sort()).toEqual(
        ['createdAt', 'durationMs', 'error', 'finishedAt', 'id', 'idempotencyKey', 'scheduledFor', 'startedAt', 'status', 'tasks', 'trigger', 'workflow'],
      );
      await h.db.pool.query('delete from runs where id = $1', [scheduled]);
    });

    it('filters by workflow, by status, and by both', async () => {
      expect((await d.get('/api/runs?workflow=breaks')).body.runs.map((x: any) => x.id)).toEqual([failedRun]);
      expect((await d.get('/api/runs?status=success')).body.runs.map((x: any) => x.id)).toEqual([etlRun]);
      expect((await d.get('/api/runs?workflow=etl&status=failed')).body.runs).toEqual([]);
      expect((await d.get('/api/runs?workflow=nothing-here')).body).toEqual({ runs: [], nextCursor: null });
    });

    it('pages by cursor through runs made in the same instant, without a gap or a repeat', async () => {
      const made: string[] = [];
      for (let i = 0; i < 11; i++) made.push(await h.trigger('slow'));
      // Ties on created_at (one microsecond apart or equal) are where a rounded cursor would lose runs.
      await h.db.pool.query(`update runs set created_at = '2026-01-01T00:00:00.000001Z' where id = any($1::uuid[])`, [made.slice(0, 5)]);
      await h.db.pool.query(`update runs set created_at = '2026-01-01T00:00:00.000002Z' where id = any($1::uuid[])`, [made.slice(5, 8)]);
      const { rows } = await h.db.pool.query(`select id from runs where workflow = 'slow' order by created_at desc, id desc`);
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: any = await d.get(`/api/runs?workflow=slow&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.status).toBe(200);
        expect(page.body.runs.length).toBeLessThanOrEqual(3);
        seen.push(...page.body.runs.map((x: any) => x.id));
        cursor = page.body.nextCursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(4);
      expect(seen).toEqual(rows.map((r) => r.id));
      await h.db.pool.query(`delete from runs where workflow = 'slow'`);
    });

    it.each([
      ['status=bogus', /status "bogus" is not a run status: use one of pending, running, success, failed, cancelled/],
      ['limit=0', /limit "0" is not valid: it accepts a whole number from 1 to 200/],
      ['limit=ten', /limit "ten" is not valid/],
      ['cursor=not-a-cursor', /cursor "not-a-cursor" is not valid: pass the nextCursor of a previous page/],
      [`cursor=${Buffer.from('2026-01-01T00:00:00.000001Z|nope').toString('base64url')}`, /cursor .* is not valid/],
      ['workflow=Not_A_Name', /workflow "Not_A_Name" is not a workflow name/],
      ['page=2', /unknown parameter "page": \/api\/runs takes workflow, status, limit and cursor/],
    ])('refuses %s with 400 naming what is wrong', async (query, message) => {
      const r = await d.get(`/api/runs?${query}`);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatch(message);
    });
    it('gives a duration that is exactly finishedAt minus startedAt as shown, whatever the microseconds', async () => {
      // Postgres keeps microseconds and the API shows milliseconds: 0.0009 s to 0.2231 s is 222.2 ms,
      // shown as .000 to .223, so the duration must read 223, not a rounded 222.
      const runId = (await triggerRun(h.db.pool, 'etl', { idempotencyKey: 'duration-check' })).runId;
      await h.db.pool.query(
        `update runs set status = 'cancelled', started_at = '2026-01-01 00:00:00.000900+00', finished_at = '2026-01-01 00:00:00.223100+00' where id = $1`,
        [runId],
      );
      const run = (await d.get(`/api/runs/${runId}`)).body.run;
      expect([run.startedAt, run.finishedAt, run.durationMs]).toEqual(['2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.223Z', 223]);
      await h.db.pool.query('delete from runs where id = $1', [runId]);
    });
  });

  describe('GET /api/runs/:id', () => {
    it('gives the run, its graph, its tasks and every attempt with times, execution and console links', async () => {
      const r = await d.get(`/api/runs/${etlRun}`);
      expect(r.status).toBe(200);
      expect(r.body.run).toMatchObject({ id: etlRun, workflow: 'etl', status: 'success', params: { day: '2026-03-01' }, workflowVersion: 1 });
      expect(r.body.graph).toEqual([
        { name: 'extract', dependsOn: [], executor: 'cloudrun', target: job('extract'), count: 2, statuses: { success: 2 } },
        { name: 'transform', dependsOn: ['extract'], executor: 'cloudrun', target: job('transform'), count: 1, statuses: { success: 1 } },
        { name: 'load', dependsOn: ['transform'], executor: 'cloudrun', target: job('load'), count: 1, statuses: { success: 1 } },
      ]);
      // In graph order: a task after those it depends on.
      expect(r.body.tasks.map((t: any) => `${t.name}[${t.index}]`)).toEqual(['extract[0]', 'extract[1]', 'transform[0]', 'load[0]']);
      expect(r.body).toMatchObject({ taskCount: 4, nextCursor: null });
      const transform = r.body.tasks.find((t: any) => t.name === 'transform');
      expect(transform).toMatchObject({ status: 'success', attempt: 2, maxAttempts: 2, error: null });
      expect(transform.attempts.map((a: any) => [a.attempt, a.status])).toEqual([[1, 'failed'], [2, 'success']]);
      const [first, second] = transform.attempts;
      expect(first.error).toMatch(/./);
      expect(second.error).toBeNull();
      for (const a of transform.attempts) {
        expect(a.executionName).toMatch(/^projects\/demo\/locations\/us-central1\/jobs\/transform\/executions\/transform-/);
        expect(Date.parse(a.claimedAt)).toBeLessThanOrEqual(Date.parse(a.sentAt));
        expect(Date.parse(a.sentAt)).toBeLessThanOrEqual(Date.parse(a.finishedAt));
        const execution = a.executionName.split('/').pop();
        expect(a.links.consoleUrl).toBe(`https://console.cloud.google.com/run/jobs/executions/details/us-central1/${execution}/tasks?project=demo`);
        const query = decodeURIComponent(/query=([^;]*)/.exec(a.links.logsUrl)![1]);
        expect(query).toContain('resource.type="cloud_run_job"');
        expect(query).toContain('resource.labels.job_name="transform"');
        expect(query).toContain(`labels."run.googleapis.com/execution_name"="${execution}"`);
      }
      // The retry started after the failed attempt ended (its backoff).
      expect(Date.parse(second.claimedAt)).toBeGreaterThanOrEqual(Date.parse(first.finishedAt));
    });

    it('shows the failed run: the error of each failed attempt, and the skipped tasks without attempts', async () => {
      const r = await d.get(`/api/runs/${failedRun}`);
      const byName = Object.fromEntries(r.body.tasks.map((t: any) => [t.name, t]));
      expect(byName.a.attempts.map((x: any) => x.status)).toEqual(['failed', 'failed']);
      for (const x of byName.a.attempts) expect(x.error).toMatch(/./);
      expect(byName.b).toMatchObject({ status: 'skipped', attempts: [], error: 'a task it depends on did not succeed' });
      expect(byName.d.attempts.map((x: any) => x.status)).toEqual(['success']);
      expect(r.body.graph.find((n: any) => n.name === 'a').statuses).toEqual({ failed: 1 });
    });

    it('answers 404 for an unknown run and 400 for a malformed id', async () => {
      const unknown = await d.get('/api/runs/00000000-0000-4000-8000-000000000000');
      expect(unknown).toMatchObject({ status: 404, body: { error: 'unknown run 00000000-0000-4000-8000-000000000000' } });
      const bad = await d.get('/api/runs/12345');
      expect(bad).toMatchObject({ status: 400, body: { error: '"12345" is not a run id: run ids are UUIDs, as `tickrun status` lists them' } });
      const nowhere = await d.get('/api/nothing');
      expect(nowhere.status).toBe(404);
      expect(nowhere.body.error).toMatch(/no such page: \/api\/nothing/);
      const wrongMethod = await d.post(`/api/workflows`, '{}', { 'content-type': 'application/json' });
      expect(wrongMethod.status).toBe(405);
    });
  });

  describe('GET /api/workflows', () => {
    it('gives each definition, schedule and next slot, concurrency, pause, and the latest runs', async () => {
      const r = await d.get('/api/workflows');
      expect(r.status).toBe(200);
      const byName = Object.fromEntries(r.body.workflows.map((w: any) => [w.name, w]));
      expect(Object.keys(byName)).toEqual(['breaks', 'etl', 'hourly', 'slow']);
      expect(byName.etl).toMatchObject({ description: 'extract, transform, load', schedule: null, nextSlotAt: null, paused: false, concurrency: null, version: 1 });
      expect(Object.keys(byName.etl.definition.tasks).sort()).toEqual(['extract', 'load', 'transform']);
      expect(byName.etl.lastRuns).toEqual([expect.objectContaining({ id: etlRun, status: 'success' })]);
      expect(byName.breaks.lastRuns.map((x: any) => x.status)).toEqual(['failed']);
      expect(byName.slow.concurrency).toBe(3);
      expect(byName.hourly).toMatchObject({ schedule: `${SLOT_MINUTE} * * * *`, timezone: 'UTC', paused: false });
      const next = Date.parse(byName.hourly.nextSlotAt);
      expect(next).toBeGreaterThan(Date.now());
      expect(new Date(next).getUTCMinutes()).toBe(SLOT_MINUTE);
    });
  });

  describe('actions', () => {
    it('triggers a run with params, and the same idempotency key returns the same run', async () => {
      const first = await d.action('/api/runs', { workflow: 'etl', params: { day: '2026-03-02' }, idempotencyKey: 'k-2' });
      expect(first.status).toBe(201);
      expect(first.body).toEqual({ runId: expect.stringMatching(/^[0-9a-f-]{36}$/), created: true });
      const again = await d.action('/api/runs', { workflow: 'etl', params: { day: 'other' }, idempotencyKey: 'k-2' });
      expect(again).toMatchObject({ status: 200, body: { runId: first.body.runId, created: false } });
      const run = await d.get(`/api/runs/${first.body.runId}`);
      expect(run.body.run).toMatchObject({ status: 'pending', trigger: 'key', params: { day: '2026-03-02' } });
      await h.db.pool.query('delete from runs where id = $1', [first.body.runId]);
    });

    it.each([
      [{ workflow: 'nope' }, /unknown workflow "nope"/],
      [{}, /field "workflow" is required/],
      [{ workflow: 'etl', params: { n: 1 } }, /param "n" must be a string/],
      [{ workflow: 'etl', params: ['a'] }, /field "params" must be an object of string values/],
      [{ workflow: 'etl', idempotencyKey: '' }, /field "idempotencyKey" must be a non-empty string/],
      [{ workflow: 'etl', when: 'now' }, /unknown field "when"/],
      [[1, 2], /the body must be a JSON object/],
    ])('refuses the trigger body %j with 400', async (body, message) => {
      const r = await d.action('/api/runs', body);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatch(message);
    });

    it('refuses a body that is not JSON with 400', async () => {
      const r = await d.post('/api/runs', '{"workflow":', { 'content-type': 'application/json', 'x-tickrun-action': '1', origin: d.url.replace(/\/$/, '') });
      expect(r).toMatchObject({ status: 400, body: { error: 'the body is not valid JSON' } });
    });

    describe('are refused with 403 unless they come from the dashboard itself', () => {
      const body = JSON.stringify({ workflow: 'etl' });
      const own = () => d.url.replace(/\/$/, '');
      it.each([
        ['a form post (not JSON)', () => ({ 'content-type': 'application/x-www-form-urlencoded', 'x-tickrun-action': '1', origin: own() }), /accept only a JSON body/],
        ['text/plain (a no-preflight fetch)', () => ({ 'content-type': 'text/plain', 'x-tickrun-action': '1', origin: own() }), /accept only a JSON body/],
        ['no action header', () => ({ 'content-type': 'application/json', origin: own() }), /need the header X-Tickrun-Action/],
        ['another Origin', () => ({ 'content-type': 'application/json', 'x-tickrun-action': '1', origin: 'https://evil.example' }), /Origin "https:\/\/evil.example" is not this dashboard/],
        ['no Origin and no Sec-Fetch-Site', () => ({ 'content-type': 'application/json', 'x-tickrun-action': '1' }), /need an Origin header/],
        ['Sec-Fetch-Site: cross-site', () => ({ 'content-type': 'application/json', 'x-tickrun-action': '1', 'sec-fetch-site': 'cross-site', origin: own() }), /only from the dashboard's own pages/],
        ['Sec-Fetch-Site: same-site', () => ({ 'content-type': 'application/json', 'x-tickrun-action': '1', 'sec-fetch-site': 'same-site' }), /only from the dashboard's own pages/],
      ])('%s', async (_case, headers, message) => {
        const before = (await h.db.pool.query('select count(*)::int as n from runs')).rows[0].n;
        const r = await d.post('/api/runs', body, headers());
        expect(r.status).toBe(403);
        expect(r.body.error).toMatch(message);
        expect((await h.db.pool.query('select count(*)::int as n from runs')).rows[0].n).toBe(before);
      });

      it('a browser same-origin request (Sec-Fetch-Site) passes', async () => {
        const r = await d.post('/api/runs', body, { 'content-type': 'application/json', 'x-tickrun-action': '1', 'sec-fetch-site': 'same-origin' });
        expect(r.status).toBe(201);
        await h.db.pool.query('delete from runs where id = $1', [r.body.runId]);
      });

      it('the local server answers only to a loopback Host (no DNS rebinding)', async () => {
        const { port } = new URL(d.url);
        const status = await new Promise<number>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, path: '/api/runs', headers: { host: `attacker.example:${port}` } }, (res) => {
            res.resume();
            resolve(res.statusCode!);
          });
          req.on('error', reject);
          req.end();
        });
        expect(status).toBe(403);
        expect((await fetch(`http://localhost:${port}/api/workflows`)).status).toBe(200);
      });
    });

    it('cancels a live run and its execution through the executor; 409 once ended, 404 unknown, 400 malformed', async () => {
      const runId = await h.trigger('slow');
      await tick(h.deps, { budgetMs: 0 });
      const execution = emu.executions.find((e) => e.env.TICKRUN_RUN_ID === runId)!;
      expect(execution.cancelled).toBe(false);
      const r = await d.action(`/api/runs/${runId}/cancel`);
      expect(r).toMatchObject({ status: 200, body: { cancelled: true, status: 'cancelled', executionsCancelled: 1, errors: [] } });
      expect(execution.cancelled).toBe(true);
      // The task ends once a tick sees its execution stopped.
      await tick(h.deps, { budgetMs: 0 });
      const detail = await d.get(`/api/runs/${runId}`);
      expect(detail.body.run.status).toBe('cancelled');
      expect(detail.body.tasks[0].attempts).toEqual([expect.objectContaining({ attempt: 1, status: 'cancelled', error: 'run cancelled' })]);
      expect((await d.action(`/api/runs/${runId}/cancel`))).toMatchObject({ status: 409, body: { error: `run ${runId} has already ended (cancelled): there is nothing to cancel` } });
      expect((await d.action('/api/runs/00000000-0000-4000-8000-000000000000/cancel')).status).toBe(404);
      expect((await d.action('/api/runs/nope/cancel'))).toMatchObject({ status: 400, body: { error: '"nope" is not a run id: run ids are UUIDs, as `tickrun status` lists them' } });
      expect((await d.post(`/api/runs/${runId}/cancel`, '{}', { 'content-type': 'application/json' })).status).toBe(403);
    });

    it('retries a failed run: its failed task and those skipped because of it run again, to success', async () => {
      // Two retries racing: one wins, the other finds the run no longer failed.
      const [x, y] = await Promise.all([d.action(`/api/runs/${failedRun}/retry`), d.action(`/api/runs/${failedRun}/retry`)]);
      const [won, lost] = x.status === 200 ? [x, y] : [y, x];
      expect(won).toMatchObject({ status: 200, body: { retried: true, status: 'running', requeuedTasks: 1, resetTasks: 2 } });
      expect(lost).toMatchObject({ status: 409, body: { error: `run ${failedRun} is running, not failed: only a failed run can be retried` } });
      const { rows } = await h.db.pool.query('select name, status, attempt, max_attempts, error from tasks where run_id = $1 order by name', [failedRun]);
      expect(rows).toEqual([
        { name: 'a', status: 'queued', attempt: 2, max_attempts: 4, error: null },
        { name: 'b', status: 'waiting', attempt: 0, max_attempts: 1, error: null },
        { name: 'c', status: 'waiting', attempt: 0, max_attempts: 1, error: null },
        { name: 'd', status: 'success', attempt: 1, max_attempts: 1, error: null },
      ]);
      const run = (await d.get(`/api/runs/${failedRun}`)).body.run;
      expect(run).toMatchObject({ status: 'running', finishedAt: null, error: null });
      // Whatever broke is fixed now: the retried attempt succeeds.
      emu.setBehaviour(() => ({ outcome: 'success', durationMs: 0 }));
      try {
        expect((await h.runToEnd(failedRun)).status).toBe('success');
      } finally {
        emu.setBehaviour(behaviourFromEnv);
      }
      const detail = (await d.get(`/api/runs/${failedRun}`)).body;
      const a = detail.tasks.find((t: any) => t.name === 'a');
      // Attempt numbers go on, so an execution is never mistaken for an earlier attempt's.
      expect(a.attempts.map((t: any) => [t.attempt, t.status])).toEqual([[1, 'failed'], [2, 'failed'], [3, 'success']]);
      expect(detail.tasks.map((t: any) => t.status)).toEqual(['success', 'success', 'success', 'success']);
      expect(await d.action(`/api/runs/${failedRun}/retry`)).toMatchObject({ status: 409, body: { error: `run ${failedRun} is success, not failed: only a failed run can be retried` } });
      expect((await d.action('/api/runs/00000000-0000-4000-8000-000000000000/retry')).status).toBe(404);
    });
  });

  describe('the page', () => {
    it('is one HTML page, one script and one stylesheet, served plain or gzipped, and small', async () => {
      const sizes = { raw: 0, gzip: 0 };
      for (const file of ['/', '/app.js', '/app.css']) {
        const plain = await fetch(d.url.replace(/\/$/, '') + file, { headers: { 'accept-encoding': 'identity' } });
        expect(plain.status).toBe(200);
        expect(plain.headers.get('content-encoding')).toBeNull();
        expect(plain.headers.get('content-security-policy')).toContain("script-src 'self'");
        sizes.raw += Number(plain.headers.get('content-length'));
        // fetch would decompress: a raw request shows the bytes on the wire.
        const wire = await new Promise<number>((resolve, reject) => {
          http.get(d.url.replace(/\/$/, '') + file, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
            expect(res.headers['content-encoding']).toBe('gzip');
            let n = 0;
            res.on('data', (c) => (n += c.length));
            res.on('end', () => resolve(n));
          }).on('error', reject);
        });
        sizes.gzip += wire;
      }
      process.stdout.write(`dashboard page transfer: ${sizes.raw} bytes, ${sizes.gzip} bytes gzipped\n`);
      expect(sizes.raw).toBeLessThan(50_000);
      expect(sizes.gzip).toBeLessThan(15_000);
      const html = await (await fetch(d.url)).text();
      expect(html).toContain('<script src="app.js"></script>');
      expect((await fetch(d.url + 'app.js', { headers: { 'if-none-match': (await fetch(d.url + 'app.js')).headers.get('etag')! } })).status).toBe(304);
    });
  });
});

describe('the dashboard function served by functions-framework from dist/tick.js', () => {
  let h: Harness;
  let fn: DashboardFunction;
  beforeAll(async () => {
    h = await createHarness();
    await h.apply(`name: fn\ntasks:\n  a: { job: ${job('a')} }\n`);
    fn = await serveDashboardFunction({ DATABASE_URL: h.db.url });
  });
  afterAll(async () => {
    fn?.stop();
    await h?.close();
  });

  it('serves the page and the API, takes an action from its own origin and refuses one without the header', async () => {
    // Reached directly, its address is a loopback one with a port, as the proxy's is: its own page names it.
    const read = (path: string) => fetch(fn.url + path, { headers: { referer: fn.url + '/' } });
    const page = await fetch(fn.url + '/');
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('app.js');
    const headers = { 'content-type': 'application/json', 'x-tickrun-action': '1', origin: fn.url };
    const made = await fetch(fn.url + '/api/runs', { method: 'POST', headers, body: JSON.stringify({ workflow: 'fn', params: { a: '1' } }) });
    expect(made.status).toBe(201);
    const { runId } = (await made.json()) as any;
    const list = (await (await read('/api/runs?workflow=fn')).json()) as any;
    expect(list.runs.map((r: any) => r.id)).toEqual([runId]);
    expect(((await (await read(`/api/runs/${runId}`)).json()) as any).run.params).toEqual({ a: '1' });
    const refused = await fetch(fn.url + '/api/runs', { method: 'POST', headers: { 'content-type': 'application/json', origin: fn.url }, body: '{"workflow":"fn"}' });
    expect(refused.status).toBe(403);
    expect(await read('/api/runs/12345').then((r) => r.status)).toBe(400);
  });
});

// 100K tasks in 20,000 runs of 21 workflows, one of them rare, as is one status: the runs page must
// read an index range from the cursor on, never scan or sort, whichever filter is set.
const SEED = `
insert into workflows (name, definition, hash) select 'w' || g, '{"name":"w","dir":"/","tasks":{}}', 'h' from generate_series(0, 19) g;
insert into workflows (name, definition, hash) values ('rare', '{"name":"rare","dir":"/","tasks":{}}', 'h');
insert into runs (workflow, workflow_version, definition, status, created_at)
select case when g % 1000 = 0 then 'rare' else 'w' || (g % 20) end, 1, '{"name":"w","dir":"/","tasks":{}}',
       case when g % 500 = 7 then 'cancelled' else (array['success','success','success','failed','running'])[1 + g % 5] end,
       now() - g * interval '1 second'
from generate_series(1, 20000) g;
insert into tasks (run_id, workflow, run_created_at, name, task_index, status, max_attempts, backoff_ms, attempt)
select r.id, r.workflow, r.created_at, 't', i, case when r.status = 'running' then 'queued' else r.status end, 1, 1000, 1
from runs r cross join generate_series(0, 4) i;`;

describe('the runs page reads an index range, never a scan (EXPLAIN)', () => {
  let db: TestDatabase;
  let cursorAt: string;
  let cursorId: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query(SEED);
    // As autovacuum leaves a table: statistics and visibility map up to date.
    await db.pool.query('vacuum analyze runs, tasks');
    const { rows } = await db.pool.query(`select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at, id from runs order by created_at desc, id desc offset 10000 limit 1`);
    [cursorAt, cursorId] = [rows[0].at, rows[0].id];
  });
  afterAll(() => db.drop());

  // `ordered`: the page comes straight off the index in order (Limit over the index scan, no sort). A rare
  // filter may instead read its few matches by their own index and sort them, which the planner prefers.
  const ANY = /runs_(latest|workflow_latest|status_latest)/;
  it.each([
    ['first page', {}, /runs_latest/, true],
    ['a later page', { after: true }, /runs_latest/, true],
    ['by a common workflow, a later page', { workflow: 'w3', after: true }, ANY, true],
    ['by a common status, a later page', { status: 'failed', after: true }, ANY, true],
    ['by a rare workflow, a later page', { workflow: 'rare', after: true }, /runs_workflow_/, false],
    ['by a rare status, a later page', { status: 'cancelled', after: true }, /runs_status_latest/, false],
    ['by workflow and status', { workflow: 'rare', status: 'success' }, /runs_workflow_/, false],
  ])('%s', async (_name, f: { workflow?: string; status?: string; after?: boolean }, index, ordered) => {
    const { text, values } = runListQuery({ limit: 50, workflow: f.workflow, status: f.status as RunStatus | undefined, ...(f.after && { after: { createdAt: cursorAt, id: cursorId } }) });
    const { rows } = await db.pool.query(`explain ${text}`, values);
    const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(plan).not.toMatch(/Seq Scan/);
    expect(plan).toMatch(new RegExp(`Index (Only )?Scan (using|on) ${index.source}\\w* on runs r|Bitmap Index Scan on ${index.source}`));
    if (ordered) expect(plan.split('\n').slice(0, 2).join('\n')).toMatch(new RegExp(`^Limit .*\\n\\s*->  Index (Only )?Scan using ${index.source} on runs r`));
    if (f.after && ordered) expect(plan).toMatch(/Index Cond: .*ROW\(created_at, id\) < ROW\(/);
    // Task counts only for the page's runs, by the (run_id, status) index.
    expect(plan).toMatch(/Index Scan on tasks_run_status[\s\S]*Index Cond: \(run_id = r\.id\)|Index Only Scan using tasks_run_status/);
  });
});

describe('a run of 450 tasks comes a page of tasks at a time, with every task in its graph', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  let d: DashboardClient;
  let runId: string;
  const names = (body: any) => body.tasks.map((t: any) => `${t.name}[${t.index}]`);

  beforeAll(async () => {
    emu = await startCloudRunEmulator();
    h = await createHarness({ CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_BATCH_SIZE: '500', TICKRUN_DISPATCH_CONCURRENCY: '50' });
    await h.apply(`name: wide\ntasks:\n  fan: { job: ${job('fan')}, count: 450 }\n  join: { job: ${job('join')}, depends_on: [fan] }\n`);
    runId = await h.trigger('wide');
    expect((await h.runToEnd(runId)).status).toBe('success');
    d = await startDashboard(h);
  });
  afterAll(async () => {
    await d?.close();
    await h?.close();
    await emu?.stop();
  });

  it('pages by cursor in graph order: 200, 200, then the last 51', async () => {
    const first = await d.get(`/api/runs/${runId}?limit=200`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ taskCount: 451, nextCursor: expect.any(String) });
    expect(names(first.body)).toEqual(Array.from({ length: 200 }, (_, i) => `fan[${i}]`));
    // The graph counts every task, not only the page's.
    expect(first.body.graph.map((n: any) => [n.name, n.statuses])).toEqual([['fan', { success: 450 }], ['join', { success: 1 }]]);
    for (const t of first.body.tasks) expect(t.attempts.map((a: any) => a.status)).toEqual(['success']);
    const second = await d.get(`/api/runs/${runId}?limit=200&cursor=${first.body.nextCursor}`);
    expect(names(second.body)).toEqual(Array.from({ length: 200 }, (_, i) => `fan[${200 + i}]`));
    const third = await d.get(`/api/runs/${runId}?limit=200&cursor=${second.body.nextCursor}`);
    expect(names(third.body)).toEqual([...Array.from({ length: 50 }, (_, i) => `fan[${400 + i}]`), 'join[0]']);
    expect(third.body.nextCursor).toBeNull();
    // Without a limit, a page is 200.
    expect((await d.get(`/api/runs/${runId}`)).body.tasks).toHaveLength(200);
  });

  it('filters by task name and by status; the count is of what matches', async () => {
    const join = await d.get(`/api/runs/${runId}?task=join`);
    expect([names(join.body), join.body.taskCount, join.body.nextCursor]).toEqual([['join[0]'], 1, null]);
    const succeeded = await d.get(`/api/runs/${runId}?status=success&limit=1000`);
    expect([succeeded.body.tasks.length, succeeded.body.taskCount]).toEqual([451, 451]);
    const none = await d.get(`/api/runs/${runId}?status=failed`);
    expect([none.body.tasks, none.body.taskCount]).toEqual([[], 0]);
  });

  it.each([
    ['limit=0', /limit "0" is not valid: it accepts a whole number from 1 to 1000/],
    ['limit=1001', /limit "1001" is not valid/],
    ['status=done', /status "done" is not a task status: use one of waiting, queued/],
    ['task=nope', /task "nope" is not a task of this run: its tasks are fan, join/],
    ['cursor=xyz', /cursor "xyz" is not valid/],
    ['page=2', /unknown parameter "page": \/api\/runs\/ID takes task, status, limit and cursor/],
  ])('answers 400 for %s, naming it', async (query, message) => {
    const r = await d.get(`/api/runs/${runId}?${query}`);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(message);
  });
});
