import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { triggerRun } from '../../shared/operator/trigger';
import { tick } from '../../shared/tick';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { etlWorkflow, job, startDashboard, type DashboardClient } from '../helpers/dashboard';
import { createHarness, type Harness } from '../helpers/harness';

// Debian's chromium. Without the background-networking flags it tries to reach Google's services
// at start, and on a closed network its connections are refused.
const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = path.resolve(__dirname, '..', 'artifacts');

// Text a user controls, each trying to become markup: it must show as typed and never run.
const EVIL_ERROR = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';
const EVIL_PARAM = '<b id="bold">bold</b><img src=x onerror="window.__pwned = 3">';
const EVIL_DESCRIPTION = '<i id="desc">desc</i><img src=x onerror="window.__pwned = 4">';

const ETL = etlWorkflow(EVIL_DESCRIPTION);
const BREAKS = `name: breaks
tasks:
  a: { executor: process, command: ["node", "-e", ${JSON.stringify(`console.error(${JSON.stringify(EVIL_ERROR)}); process.exit(1)`)}] }
  b: { job: ${job('b')}, depends_on: [a] }
  d: { job: ${job('d')} }
`;
const SLOW = `name: slow\ntasks:\n  sleep: { job: ${job('sleep')}, env: { EMU_DURATION_MS: "600000" } }\n`;

describe('the dashboard in headless Chromium', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  let d: DashboardClient;
  let browser: Browser;
  let page: Page;
  let etlRun: string;
  let failedRun: string;

  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    emu = await startCloudRunEmulator();
    h = await createHarness({ CLOUD_RUN_EMULATOR_HOST: emu.host });
    for (const yaml of [ETL, BREAKS, SLOW]) await h.apply(yaml);
    etlRun = await h.trigger('etl', { day: '2026-03-01' });
    expect((await h.runToEnd(etlRun)).status).toBe('success');
    failedRun = (await triggerRun(h.db.pool, 'breaks', { params: { note: EVIL_PARAM }, idempotencyKey: 'key-1' })).runId;
    expect((await h.runToEnd(failedRun)).status).toBe('failed');
    d = await startDashboard(h);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('dialog', (dialog) => void dialog.accept());
  });
  afterAll(async () => {
    await browser?.close();
    await d?.close();
    await h?.close();
    await emu?.stop();
  });

  /** The page's rows of the runs table: run id, status, and the stacked bar's segments. */
  async function runRows() {
    return page.$$eval('tr[data-run]', (rows: any[]) =>
      rows.map((tr) => ({
        id: tr.getAttribute('data-run'),
        status: tr.querySelector('.badge').textContent,
        trigger: tr.children[3].textContent,
        segments: [...tr.querySelectorAll('.bar .seg')].map((s: any) => [s.getAttribute('data-status'), Number(s.getAttribute('data-count')), Math.round(s.getBoundingClientRect().width)]),
      })),
    );
  }

  it('lists the runs with a stacked bar of their task counts', async () => {
    await page.goto(d.url);
    await page.waitForSelector('tr[data-run]');
    const rows = await runRows();
    expect(rows.map((r) => [r.id, r.status, r.trigger])).toEqual([[failedRun, 'failed', 'key key-1'], [etlRun, 'success', 'manual']]);
    // The bar is 160px wide: each segment's width is its share of the run's tasks.
    expect(rows[1].segments).toEqual([['success', 4, 160]]);
    expect(rows[0].segments.map(([s, n]) => [s, n])).toEqual([['success', 1], ['failed', 1], ['skipped', 1]]);
    for (const [, , width] of rows[0].segments) expect(Math.abs((width as number) - 160 / 3)).toBeLessThanOrEqual(1);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-runs.png'), fullPage: true });

    await page.selectOption('select[name=status]', 'success');
    await page.waitForFunction(() => document.querySelectorAll('tr[data-run]').length === 1);
    expect((await runRows()).map((r) => r.id)).toEqual([etlRun]);
  });

  it('draws the run: every task name in the graph, one timeline bar per attempt, retries visible', async () => {
    await page.goto(d.url);
    await page.click(`tr[data-run="${etlRun}"] a`);
    await page.waitForSelector('svg.gantt');
    const nodes = await page.$$eval('svg.dag g.node', (gs: any[]) => gs.map((g) => [g.getAttribute('data-task'), g.getAttribute('data-status'), g.querySelector('text').textContent]));
    expect(nodes).toEqual([['extract', 'success', 'extract'], ['transform', 'success', 'transform'], ['load', 'success', 'load']]);
    expect(await page.locator('svg.dag path.edge').count()).toBe(2);

    const detail = (await d.get(`/api/runs/${etlRun}`)).body;
    const attempts = detail.tasks.flatMap((t: any) => t.attempts.map((a: any) => [`${t.name}[${t.index}]`, a.attempt, a.status]));
    expect(attempts).toHaveLength(5);
    const bars = await page.$$eval('svg.gantt g.attempt-bar', (gs: any[]) => gs.map((g) => [g.getAttribute('data-task'), Number(g.getAttribute('data-attempt')), g.getAttribute('data-status')]));
    expect(bars.sort()).toEqual(attempts.sort());
    // The retry: two bars on transform's row, the failed one ending before the second starts.
    const transform = await page.$$eval('svg.gantt g.attempt-bar[data-task="transform[0]"] rect', (rs: any[]) => rs.map((r) => ({ x: Number(r.getAttribute('x')), w: Number(r.getAttribute('width')), y: r.getAttribute('y'), cls: r.getAttribute('class') })));
    expect(transform.map((r) => r.cls)).toEqual(['attempt s-failed', 'attempt s-success']);
    expect(transform[0].y).toBe(transform[1].y);
    expect(transform[0].x + transform[0].w).toBeLessThanOrEqual(transform[1].x + 3);
    // Each Cloud Run execution links to the console and to its logs.
    const links = await page.$$eval('tr.task[data-task="transform[0]"] a', (as: any[]) => as.map((a) => [a.textContent, a.getAttribute('href')]));
    expect(links).toHaveLength(4);
    expect(links[0]).toEqual(['Cloud Run', expect.stringMatching(/^https:\/\/console\.cloud\.google\.com\/run\/jobs\/executions\/details\/us-central1\/transform-/)]);
    expect(links[1]).toEqual(['Logs', expect.stringMatching(/^https:\/\/console\.cloud\.google\.com\/logs\/query;query=/)]);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-run.png'), fullPage: true });
  });

  it('shows errors, params and descriptions as text, never as markup', async () => {
    await page.goto(`${d.url}#/runs/${failedRun}`);
    await page.waitForSelector('tr.task[data-task="a[0]"] pre.error');
    const error = await page.textContent('tr.task[data-task="a[0]"] pre.error');
    expect(error).toContain(EVIL_ERROR);
    expect(await page.textContent('table.params td')).toBe(EVIL_PARAM);
    expect(await page.locator('main script, main img, #bold').count()).toBe(0);
    expect(await page.locator('svg.dag g.node[data-task="a"]').getAttribute('data-status')).toBe('failed');
    expect(await page.locator('svg.dag g.node[data-task="b"]').getAttribute('data-status')).toBe('skipped');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-failed-run.png'), fullPage: true });

    await page.goto(`${d.url}#/workflows`);
    await page.waitForSelector('[data-workflow="etl"]');
    expect(await page.textContent('[data-workflow="etl"] .wf-head .muted')).toBe(EVIL_DESCRIPTION);
    expect(await page.locator('main img, #desc').count()).toBe(0);
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-workflows.png'), fullPage: true });
  });

  it('triggers a run with params from the workflows page, follows it live, and cancels it', async () => {
    await page.goto(`${d.url}#/workflows`);
    const card = page.locator('[data-workflow="slow"]');
    await card.locator('textarea[name=params]').fill('who=<u>me</u>\nday=2026-03-02');
    await card.locator('button[data-action=trigger]').click();
    await page.waitForURL(/#\/runs\/[0-9a-f-]{36}$/);
    const runId = /#\/runs\/(.+)$/.exec(page.url())![1];
    await page.waitForSelector('.wf-head .badge');
    expect(await page.textContent('.wf-head .badge')).toBe('pending');
    expect(await page.locator('table.params td').allTextContents()).toEqual(['2026-03-02', '<u>me</u>']);
    expect(await page.isVisible('#live')).toBe(true);

    // A tick sends the task; the page, polling while the run is live, shows it running.
    await tick(h.deps, { budgetMs: 0 });
    await page.waitForFunction(() => document.querySelector('.wf-head .badge')?.textContent === 'running', undefined, { timeout: 10_000 });
    await page.waitForSelector('svg.gantt g.attempt-bar[data-status=dispatched], svg.gantt g.attempt-bar[data-status=running]');

    await page.click('button[data-action=cancel]');
    await page.waitForFunction(() => document.querySelector('.wf-head .badge')?.textContent === 'cancelled', undefined, { timeout: 10_000 });
    expect(emu.executions.find((e) => e.env.TICKRUN_RUN_ID === runId)!.cancelled).toBe(true);
    expect(await page.isVisible('#live')).toBe(false);
    expect(await page.locator('button[data-action=cancel]').isDisabled()).toBe(true);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-cancelled.png'), fullPage: true });
  });

  it('retries the failed run from its page', async () => {
    await page.goto(`${d.url}#/runs/${failedRun}`);
    await page.click('button[data-action=retry]');
    await page.waitForFunction(() => document.querySelector('.wf-head .badge')?.textContent === 'running', undefined, { timeout: 10_000 });
    const { rows } = await h.db.pool.query('select name, status from tasks where run_id = $1 order by name', [failedRun]);
    expect(rows.map((r) => [r.name, r.status])).toEqual([['a', 'queued'], ['b', 'waiting'], ['d', 'success']]);
  });
  it('shows a wide run 200 tasks at a time, then more on demand, and filters its tasks by status', async () => {
    await h.apply(`name: wide\ntasks:\n  fan: { job: ${job('fan')}, count: 250 }\n`);
    const wide = await h.trigger('wide');
    expect((await h.runToEnd(wide, { maxTicks: 20 })).status).toBe('success');
    await page.goto(`${d.url}#/runs/${wide}`);
    await page.waitForSelector('.task-pager .task-count');
    expect(await page.textContent('.task-pager .task-count')).toBe('Showing 200 of 250 tasks');
    expect(await page.locator('svg.gantt g.attempt-bar').count()).toBe(200);
    // The graph counts all 250, whatever page is shown.
    expect(await page.textContent('svg.dag g.node[data-task="fan"] text.sub')).toBe('250/250 succeeded (×250)');
    await page.click('button[data-action=more-tasks]');
    await page.waitForFunction(() => document.querySelectorAll('svg.gantt g.attempt-bar').length === 250);
    expect(await page.locator('tr.task').count()).toBe(250);
    expect(await page.locator('.task-pager .task-count').count()).toBe(0);
    await page.selectOption('select[name=task-status]', 'failed');
    await page.waitForFunction(() => document.querySelectorAll('tr.task').length === 0);
    expect(await page.textContent('.timeline')).toBe('No attempt yet.');
  });

  it('draws an array task as one node counted by index, with a line per execution', async () => {
    await h.apply(`name: arr\ndefaults: { backoff: 50ms }\ntasks:\n  fan: { job: ${job('fan')}, array: true, count: 20, retries: 1, env: { EMU_FAIL_INDEXES: "3,7", EMU_FAIL: "attempts<2" } }\n`);
    const arr = await h.trigger('arr');
    expect((await h.runToEnd(arr)).status).toBe('success');
    await page.goto(`${d.url}#/runs/${arr}`);
    await page.waitForSelector('table.array-executions[data-task="fan"] tr.array-execution');
    const node = page.locator('svg.dag g.node.array[data-task="fan"]');
    expect(await node.locator('text').allTextContents()).toEqual(['fan', 'array', '20 indexes: 20 \u2713', '2 executions']);
    // The first execution ran all 20, of which 3 and 7 failed; the retry ran those two.
    const lines = await page.$$eval('tr.array-execution', (rows: any[]) => rows.map((tr) => [tr.getAttribute('data-attempt'), tr.querySelector('.indexes').textContent, tr.querySelector('.counts').textContent]));
    expect(lines).toEqual([['1', '20', '18 success, 2 failed'], ['2', '2', '2 success']]);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-array-run.png'), fullPage: true });
  });
});
