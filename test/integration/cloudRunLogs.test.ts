import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getRun } from '../../shared/model/runs';
import { tick } from '../../shared/tick';
import { runCli } from '../helpers/cli';
import type { CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { emulatorHarness, type Harness } from '../helpers/harness';
import { startLoggingEmulator, type EmulatedEntry, type LoggingEmulator } from '../helpers/loggingEmulator';

const JOBS = 'projects/demo/locations/us-central1/jobs';

/** An entry as Cloud Run writes a job's container output (resource cloud_run_job, execution labels). */
function entry(execution: string, at: number, text: string, over: { project?: string; job?: string; location?: string } = {}): EmulatedEntry {
  const { project = 'demo', job = 'logjob', location = 'us-central1' } = over;
  return {
    logName: `projects/${project}/logs/run.googleapis.com%2Fstdout`,
    resource: { type: 'cloud_run_job', labels: { job_name: job, location, project_id: project } },
    labels: { 'run.googleapis.com/execution_name': execution, 'run.googleapis.com/task_index': '0', 'run.googleapis.com/task_attempt': '0' },
    timestamp: new Date(at).toISOString(),
    textPayload: text,
    insertId: `${execution}-${at}-${text}`,
  };
}

describe('tickrun logs for Cloud Run tasks', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  let logging: LoggingEmulator;
  let runId: string;
  let execution: string;
  let env: Record<string, string>;
  emulatorHarness((started) => ({ emu, h } = started));
  beforeAll(async () => {
    logging = await startLoggingEmulator();
    await h.apply(`name: remote\ntasks:\n  work: { job: ${JOBS}/logjob }\n`);
    runId = await h.trigger('remote');
    expect((await h.runToEnd(runId)).status).toBe('success');
    const [task] = await h.tasks(runId);
    execution = task.executionName!.split('/').pop()!;
    const t0 = emu.executions.find((e) => e.name === task.executionName)!.createdAt;
    // Its own lines, written out of order; then lines that must not show: another execution of the same
    // job, the same execution id under another job, region and project.
    logging.entries.push(
      ...[4, 0, 2, 1, 3].map((i) => entry(execution, t0 + 100 + i * 10, `line ${i}`)),
      entry(`${execution}x`, t0 + 105, 'other execution'),
      entry(execution, t0 + 106, 'other job', { job: 'another' }),
      entry(execution, t0 + 107, 'other region', { location: 'europe-west1' }),
      entry(execution, t0 + 108, 'other project', { project: 'elsewhere' }),
    );
    env = { DATABASE_URL: h.db.url, TICKRUN_HOME: h.home, CLOUD_LOGGING_EMULATOR_HOST: logging.host };
  });
  afterAll(() => logging?.stop());
  beforeEach(() => {
    logging.requests.length = 0;
    logging.maxPageSize = 1000;
  });

  it("prints the execution's entries in time order, page after page, and no one else's", async () => {
    logging.maxPageSize = 2;
    const result = await runCli(['logs', runId, 'work'], env);
    expect(result).toMatchObject({ code: 0, stdout: 'line 0\nline 1\nline 2\nline 3\nline 4\n' });
    // Five entries two to a page: three reads, each carrying the previous page's token.
    expect(logging.requests).toHaveLength(3);
    expect(logging.requests.map((r) => Boolean(r.pageToken))).toEqual([false, true, true]);
    for (const r of logging.requests) {
      expect(r).toMatchObject({ resourceNames: ['projects/demo'], orderBy: 'timestamp asc' });
      expect(r.filter).toContain(`labels."run.googleapis.com/execution_name"="${execution}"`);
      expect(r.filter).toMatch(/timestamp>="[^"]+"/);
    }
  });

  it('prints the console link, and why, when Cloud Logging refuses the read', async () => {
    logging.refuse(403);
    const denied = await runCli(['logs', runId, 'work'], env);
    expect(denied.code).toBe(0);
    expect(denied.stderr).toContain('PERMISSION_DENIED');
    const link = denied.stdout.trim();
    expect(link).toMatch(/^https:\/\/console\.cloud\.google\.com\/logs\/query;query=.+\?project=demo$/);
    expect(decodeURIComponent(link)).toContain(`labels."run.googleapis.com/execution_name"="${execution}"`);
    expect(logging.requests).toHaveLength(1); // a permission does not come back on a retry
  });

  it('retries a read refused for quota once, then gives the link', async () => {
    logging.refuse(429, 1);
    const retried = await runCli(['logs', runId, 'work'], env);
    expect(retried).toMatchObject({ code: 0, stdout: 'line 0\nline 1\nline 2\nline 3\nline 4\n' });
    expect(logging.requests).toHaveLength(2);

    logging.requests.length = 0;
    logging.refuse(429, 2);
    const exhausted = await runCli(['logs', runId, 'work'], env);
    expect(exhausted.code).toBe(0);
    expect(exhausted.stderr).toContain('RESOURCE_EXHAUSTED');
    expect(exhausted.stdout).toMatch(/^https:\/\/console\.cloud\.google\.com\/logs\/query;query=/);
    expect(logging.requests).toHaveLength(2);
  });

  it('gives the link when there are no credentials to read Cloud Logging with', async () => {
    // No emulator: Google's endpoint with the ambient credentials, of which this machine has none (no
    // key file, an empty gcloud config, and no metadata server to ask: METADATA_SERVER_DETECTION=none).
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-nocreds-'));
    try {
      const { CLOUD_LOGGING_EMULATOR_HOST, ...rest } = env;
      const result = await runCli(['logs', runId, 'work'], { ...rest, HOME: home, METADATA_SERVER_DETECTION: 'none' });
      expect(result).toMatchObject({ code: 0, stderr: expect.stringMatching(/cannot read work attempt 1's logs from Cloud Logging \(.*credentials/i) });
      expect(result.stdout).toMatch(/^https:\/\/console\.cloud\.google\.com\/logs\/query;query=.+\?project=demo\n$/);
      expect(logging.requests).toHaveLength(0);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('--follow prints entries as they arrive while the execution runs, each once, and ends after it', async () => {
    await h.apply(`name: longer\ntasks:\n  work: { job: ${JOBS}/logjob, env: { EMU_DURATION_MS: "3000" } }\n`);
    const id = await h.trigger('longer');
    await tick(h.deps, { budgetMs: 0 });
    const [task] = await h.tasks(id);
    const name = task.executionName!.split('/').pop()!;
    const t0 = emu.executions.find((e) => e.name === task.executionName)!.createdAt;
    logging.entries.push(entry(name, t0 + 10, 'started'));
    const following = runCli(['logs', id, 'work', '--follow'], env);
    let ended = false;
    following.then(() => (ended = true));
    // Until its first read has been answered (a fixed second was too short for a CLI starting on a busy
    // CI machine: it then read both lines of one instant together, in either order).
    while (logging.requests.length === 0) await new Promise((r) => setTimeout(r, 50));
    // Written later, one of them at the same instant as the last line already read.
    logging.entries.push(entry(name, t0 + 10, 'same instant'), entry(name, t0 + 900, 'later'));
    for (let run = await getRun(h.db.pool, id); run.status !== 'success'; run = await getRun(h.db.pool, id)) {
      expect(ended).toBe(false);
      await new Promise((r) => setTimeout(r, 200));
      await tick(h.deps, { budgetMs: 0 });
    }
    const result = await following;
    expect(result).toMatchObject({ code: 0, stdout: 'started\nsame instant\nlater\n' });
    // One read at the start, then one every 5 s until the end is recorded, and a last one after it.
    expect(logging.requests.length).toBeLessThanOrEqual(3);
  });
});
