import { chromium, type Browser, type Page } from 'playwright-core';
import { job } from '../helpers/dashboard';
import { createHarness, type Harness } from '../helpers/harness';
import { serveDashboardFunction, startServicesProxy, type DashboardFunction, type ServicesProxy } from '../helpers/servicesProxy';

// As in dashboard.test.ts: Debian's chromium, kept off the network it does not have. The resolver rule
// is the rebinding: evil.example now resolves to this machine, where the proxy listens.
const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP evil.example 127.0.0.1'];

describe('the cloud dashboard in headless Chromium, through a model of `gcloud run services proxy`', () => {
  let h: Harness;
  let fn: DashboardFunction;
  let proxy: ServicesProxy;
  let browser: Browser;
  let page: Page;
  const runs = async () => (await h.db.pool.query('select id, status from runs order by created_at')).rows;

  beforeAll(async () => {
    h = await createHarness();
    await h.apply(`name: slow\ntasks:\n  sleep: { job: ${job('sleep')} }\n`);
    fn = await serveDashboardFunction({ DATABASE_URL: h.db.url });
    proxy = await startServicesProxy(fn.url);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
    page = await browser.newPage();
    page.on('dialog', (dialog) => void dialog.accept());
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    fn?.stop();
    await h?.close();
  });

  it('at http://localhost:PORT the page lists, triggers and cancels: its reads send its Referer, its actions its Origin', async () => {
    await page.goto(`${proxy.url}/#/workflows`);
    const card = page.locator('[data-workflow="slow"]');
    await card.locator('button[data-action=trigger]').click();
    await page.waitForURL(/#\/runs\/[0-9a-f-]{36}$/);
    const runId = /#\/runs\/(.+)$/.exec(page.url())![1];
    await page.waitForFunction(() => document.querySelector('.wf-head .badge')?.textContent === 'pending', undefined, { timeout: 10_000 });
    await page.click('button[data-action=cancel]');
    await page.waitForFunction(() => document.querySelector('.wf-head .badge')?.textContent === 'cancelled', undefined, { timeout: 10_000 });
    expect(await runs()).toEqual([{ id: runId, status: 'cancelled' }]);
    const principals = fn.logs().split('\n').filter((l) => l.includes('"action"')).map((l) => JSON.parse(l)).map((e) => [e.action, e.principal, e.status]);
    expect(principals).toEqual([['trigger', 'ada@example.com', 201], ['cancel', 'ada@example.com', 200]]);
  });

  it('a page of http://evil.example:PORT, resolved to the proxy, can neither read nor act', async () => {
    const before = await runs();
    const evil = await browser.newPage();
    try {
      await evil.goto(`http://evil.example:${proxy.port}/`);
      // The page's own script runs here as the attacker's would: same-origin, so any header goes without a preflight.
      const answers = await evil.evaluate(async () => {
        const headers = { 'content-type': 'application/json', 'x-tickrun-action': '1' };
        const made = await fetch('/api/runs', { method: 'POST', headers, body: JSON.stringify({ workflow: 'slow' }) });
        const read = await fetch('/api/runs');
        return [made.status, (await made.json()).error, read.status];
      });
      expect(answers).toEqual([403, expect.stringMatching(/^Origin "http:\/\/evil\.example:\d+" is not the address of `gcloud run services proxy`/), 403]);
      expect(await runs()).toEqual(before);
    } finally {
      await evil.close();
    }
  });
});
