import fs from 'node:fs';
import path from 'node:path';
import { tick } from '../../shared/tick';
import { getRun } from '../../shared/model/runs';
import { runCli } from '../helpers/cli';
import { createHarness, type Harness } from '../helpers/harness';

// Prints LINES lines, PAUSE_MS apart; fails attempts below FAIL_UNTIL after saying which attempt it was.
const SCRIPT = `
const attempt = Number(process.env.TICKRUN_ATTEMPT);
const lines = Number(process.env.LINES || 3);
const pause = Number(process.env.PAUSE_MS || 0);
let i = 0;
const next = () => {
  if (i === lines) return process.exit(attempt < Number(process.env.FAIL_UNTIL || 0) ? 1 : 0);
  console.log('attempt ' + attempt + ' line ' + ++i);
  setTimeout(next, pause);
};
next();
`;

describe('tickrun logs for process tasks', () => {
  let h: Harness;
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    h = await createHarness({ TICKRUN_POLL_INTERVAL: '100ms' });
    dir = path.join(h.home, 'wf');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'task.js'), SCRIPT);
    env = { DATABASE_URL: h.db.url, TICKRUN_HOME: h.home };
    await h.apply(
      `name: talk
defaults: { executor: process, command: ["node", "task.js"] }
tasks:
  say: {}
  flaky: { retries: 1, backoff: 0s, env: { FAIL_UNTIL: "2" } }
  fan: { count: 2, env: { LINES: "1" } }
`,
      dir,
    );
  });
  afterAll(() => h.close());

  it("prints a finished task's output, the latest attempt's unless --attempt names another", async () => {
    const runId = await h.trigger('talk');
    expect((await h.runToEnd(runId)).status).toBe('success');

    const say = await runCli(['logs', runId, 'say'], env);
    expect(say).toMatchObject({ code: 0, stdout: 'attempt 1 line 1\nattempt 1 line 2\nattempt 1 line 3\n' });

    const latest = await runCli(['logs', runId, 'flaky'], env);
    expect(latest).toMatchObject({ code: 0, stdout: 'attempt 2 line 1\nattempt 2 line 2\nattempt 2 line 3\n' });
    const first = await runCli(['logs', runId, 'flaky', '--attempt', '1'], env);
    expect(first).toMatchObject({ code: 0, stdout: 'attempt 1 line 1\nattempt 1 line 2\nattempt 1 line 3\n' });

    // A fanned-out task is named with its index; the bare name is ambiguous.
    expect(await runCli(['logs', runId, 'fan:1'], env)).toMatchObject({ code: 0, stdout: 'attempt 1 line 1\n' });
    const ambiguous = await runCli(['logs', runId, 'fan'], env);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/fan has 2 instances: name one as fan:0 … fan:1/);
  });

  it('says what is wrong with a run, task or attempt that does not exist (exit 2)', async () => {
    const runId = await h.trigger('talk');
    await h.runToEnd(runId);
    const noRun = await runCli(['logs', '00000000-0000-4000-8000-000000000000', 'say'], env);
    expect(noRun.code).toBe(2);
    expect(noRun.stderr).toContain("unknown run 00000000-0000-4000-8000-000000000000");
    const noTask = await runCli(['logs', runId, 'nope'], env);
    expect(noTask).toMatchObject({ code: 2 });
    expect(noTask.stderr).toContain(`run ${runId} has no task "nope": its tasks are fan, flaky, say`);
    const noAttempt = await runCli(['logs', runId, 'say', '--attempt', '3'], env);
    expect(noAttempt).toMatchObject({ code: 2 });
    expect(noAttempt.stderr).toContain('say has had 1 attempt: --attempt accepts 1');
    const badAttempt = await runCli(['logs', runId, 'say', '--attempt', 'x'], env);
    expect(badAttempt).toMatchObject({ code: 2 });
    expect(badAttempt.stderr).toContain('--attempt "x" is not valid');
  });

  it('--follow prints the lines of a running task as they come, and ends when the task does', async () => {
    await h.apply(
      `name: slow
defaults: { executor: process, command: ["node", "task.js"] }
tasks:
  drip: { env: { LINES: "6", PAUSE_MS: "300" } }
`,
      dir,
    );
    const runId = await h.trigger('slow');
    await tick(h.deps, { budgetMs: 0 }); // dispatched: the task is printing now
    const following = runCli(['logs', runId, 'drip', '--follow'], env);
    let ended = false;
    following.then(() => (ended = true));
    let run = await getRun(h.db.pool, runId);
    for (const end = Date.now() + 20_000; !['success', 'failed'].includes(run.status) && Date.now() < end; run = await getRun(h.db.pool, runId)) {
      // While the task runs, the command keeps following it.
      expect(ended).toBe(false);
      await new Promise((r) => setTimeout(r, 200));
      await tick(h.deps, { budgetMs: 0 });
    }
    expect(run.status).toBe('success');
    const result = await following;
    expect(result.code).toBe(0);
    expect(result.stdout).toBe([1, 2, 3, 4, 5, 6].map((i) => `attempt 1 line ${i}\n`).join(''));
  });
});
