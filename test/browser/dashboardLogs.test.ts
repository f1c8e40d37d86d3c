import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { job, startDashboard, type DashboardClient } from '../helpers/dashboard';
import { createHarness, type Harness } from '../helpers/harness';
import { startLoggingEmulator, type LoggingEmulator } from '../helpers/loggingEmulator';

// As dashboard.test.ts launches it: Debian's chromium, kept off Google's services.
const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// A line a task prints that tries to become markup: it must show as printed and never run.
const EVIL_LINE = '<img src=x onerror="window.__pwned = 1">';

describe("the run page's task output in headless Chromium", () => {
  let emu: CloudRunEmulator;
  let logging: LoggingEmulator;
  let h: Harness;
  let d: DashboardClient;
  let browser: Browser;
  let page: Page;
  let runId: string;

  beforeAll(async () => {
    emu = await startCloudRunEmulator();
    logging = await startLoggingEmulator();
    h = await createHarness({ CLOUD_RUN_EMULATOR_HOST: emu.host, CLOUD_LOGGING_EMULATOR_HOST: logging.host });
    const dir = path.join(h.home, 'wf');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'count.js'), `for (let i = 1; i <= 7; i++) console.log("count " + i); console.log(${JSON.stringify(EVIL_LINE)});`);
    await h.apply(`name: mixed\ntasks:\n  local: { executor: process, command: ["node", "count.js"] }\n  remote: { job: ${job('remote')} }\n`, dir);
    runId = await h.trigger('mixed');
    expect((await h.runToEnd(runId)).status).toBe('success');
    const remote = (await h.tasks(runId)).find((t) => t.name === 'remote')!;
    const t0 = emu.executions[0].createdAt;
    logging.entries.push(
      ...['remote one', 'remote two'].map((text, i) => ({
        logName: 'projects/demo/logs/run.googleapis.com%2Fstdout',
        resource: { type: 'cloud_run_job', labels: { job_name: 'remote', location: 'us-central1', project_id: 'demo' } },
        labels: { 'run.googleapis.com/execution_name': remote.executionName!.split('/').pop()! },
        timestamp: new Date(t0 + 50 + i).toISOString(),
        textPayload: text,
        insertId: `e${i}`,
      })),
    );
    d = await startDashboard(h);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });
  afterAll(async () => {
    await browser?.close();
    await d?.close();
    await h?.close();
    await logging?.stop();
    await emu?.stop();
  });

  it("shows a process attempt's last lines as text, and loads a Cloud Run attempt's logs only when asked", async () => {
    await page.goto(`${d.url}#/runs/${runId}`);
    const tail = page.locator('tr.task[data-task="local[0]"] pre.output');
    await tail.waitFor();
    expect(await tail.textContent()).toBe(['count 4', 'count 5', 'count 6', 'count 7', EVIL_LINE].join('\n'));
    expect(await page.evaluate(() => (window as any).__pwned)).toBeUndefined();
    expect(logging.requests).toHaveLength(0);

    await page.click('tr.task[data-task="remote[0]"] button[data-action="load-logs"]');
    const loaded = page.locator('tr.task[data-task="remote[0]"] pre.output');
    await loaded.waitFor();
    expect(await loaded.textContent()).toBe('remote one\nremote two');
    expect(logging.requests).toHaveLength(1);
  });
});
