import fs from 'node:fs';
import path from 'node:path';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { job, startDashboard, type DashboardClient } from '../helpers/dashboard';
import { createHarness, type Harness } from '../helpers/harness';
import { startLoggingEmulator, type LoggingEmulator } from '../helpers/loggingEmulator';

describe("the dashboard's task output", () => {
  let emu: CloudRunEmulator;
  let logging: LoggingEmulator;
  let h: Harness;
  let d: DashboardClient;
  let runId: string;
  let execution: string;

  beforeAll(async () => {
    emu = await startCloudRunEmulator();
    logging = await startLoggingEmulator();
    h = await createHarness({ CLOUD_RUN_EMULATOR_HOST: emu.host, CLOUD_LOGGING_EMULATOR_HOST: logging.host });
    const dir = path.join(h.home, 'wf');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'count.js'), 'for (let i = 1; i <= 8; i++) console.log("count " + i);');
    await h.apply(`name: mixed
tasks:
  local: { executor: process, command: ["node", "count.js"] }
  remote: { job: ${job('remote')} }
`, dir);
    runId = await h.trigger('mixed');
    expect((await h.runToEnd(runId)).status).toBe('success');
    const remote = (await h.tasks(runId)).find((t) => t.name === 'remote')!;
    execution = remote.executionName!.split('/').pop()!;
    const t0 = emu.executions[0].createdAt;
    for (let i = 0; i < 3; i++) {
      logging.entries.push({
        logName: 'projects/demo/logs/run.googleapis.com%2Fstdout',
        resource: { type: 'cloud_run_job', labels: { job_name: 'remote', location: 'us-central1', project_id: 'demo' } },
        labels: { 'run.googleapis.com/execution_name': execution },
        timestamp: new Date(t0 + 50 + i).toISOString(),
        textPayload: `remote line ${i}`,
        insertId: `e${i}`,
      });
    }
    d = await startDashboard(h);
  });
  afterAll(async () => {
    await d?.close();
    await h?.close();
    await logging?.stop();
    await emu?.stop();
  });
  beforeEach(() => (logging.requests.length = 0));

  it("gives each process attempt's last lines with the run, and reads no Cloud Logging on a poll", async () => {
    for (let poll = 0; poll < 3; poll++) {
      const { status, body } = await d.get(`/api/runs/${runId}`);
      expect(status).toBe(200);
      const byName = Object.fromEntries(body.tasks.map((t: any) => [t.name, t]));
      expect(byName.local.attempts[0].outputTail).toEqual(['count 4', 'count 5', 'count 6', 'count 7', 'count 8']);
      expect(byName.remote.attempts[0].outputTail).toBeNull();
    }
    expect(logging.requests).toHaveLength(0);
  });

  it("loads a Cloud Run attempt's entries on demand, newest page first, shown oldest first", async () => {
    const { status, body } = await d.get(`/api/runs/${runId}/logs?task=remote&index=0&attempt=1`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ source: 'cloud-logging', lines: ['remote line 0', 'remote line 1', 'remote line 2'], truncated: false });
    expect(logging.requests).toHaveLength(1);
    expect(logging.requests[0]).toMatchObject({ orderBy: 'timestamp desc', resourceNames: ['projects/demo'] });
    expect(logging.requests[0].filter).toContain(`labels."run.googleapis.com/execution_name"="${execution}"`);
  });

  it("gives a process attempt's whole output through the same route", async () => {
    const { status, body } = await d.get(`/api/runs/${runId}/logs?task=local&index=0&attempt=1`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ source: 'process', lines: [1, 2, 3, 4, 5, 6, 7, 8].map((i) => `count ${i}`), truncated: false });
  });

  it('answers a refused read with why and the console link', async () => {
    logging.refuse(403);
    const { status, body } = await d.get(`/api/runs/${runId}/logs?task=remote&index=0&attempt=1`);
    expect(status).toBe(200);
    expect(body.lines).toEqual([]);
    expect(body.error).toContain('PERMISSION_DENIED');
    expect(body.logsUrl).toMatch(/^https:\/\/console\.cloud\.google\.com\/logs\/query;query=/);
  });

  it('says which parameter is wrong (400)', async () => {
    const noTask = await d.get(`/api/runs/${runId}/logs?task=nope&index=0&attempt=1`);
    expect(noTask.status).toBe(400);
    expect(noTask.body.error).toContain('has no task "nope"');
    const badAttempt = await d.get(`/api/runs/${runId}/logs?task=local&index=0&attempt=zero`);
    expect(badAttempt.status).toBe(400);
    expect(badAttempt.body.error).toContain('attempt');
  });
});
