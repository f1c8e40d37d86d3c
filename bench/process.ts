/**
 * Rows 7 and 8, measured on real processes: the peak RSS of one `tickrun tick` over a large backlog, and
 * the function bundle's size and cold start (process start to the first tick answered).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { freePort } from '../shared/localDb';
import { seedInFlight } from './api';
import { clearRuns, median, round, runChild, seedRun, sleep, tickSummary, type Bench, type Measured } from './common';

const TIME = '/usr/bin/time';

/** Peak RSS (MB) of one `tickrun tick --json` with `env`: /usr/bin/time -v's maximum, else VmHWM polled from /proc. */
async function tickPeakRss(bench: Bench, env: Record<string, string>): Promise<{ peakMb: number; how: string; summary: Record<string, number> }> {
  const childEnv = { ...bench.env, ...env };
  if (fs.existsSync(TIME)) {
    const result = await runChild(TIME, ['-v', process.execPath, 'bin/tickrun.js', 'tick', '--json'], childEnv);
    const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(result.stderr)?.[1]);
    return { peakMb: round(kb / 1024), how: '/usr/bin/time -v', summary: tickSummary(result) };
  }
  const child = spawn(process.execPath, ['bin/tickrun.js', 'tick', '--json'], { env: { ...process.env, ...childEnv }, stdio: ['ignore', 'pipe', 'ignore'] });
  let stdout = '';
  let peakKb = 0;
  child.stdout.on('data', (d) => (stdout += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const timer = setInterval(() => {
    try {
      const kb = Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
      peakKb = Math.max(peakKb, kb);
    } catch {
      // gone between two reads
    }
  }, 10);
  const code = await exited;
  clearInterval(timer);
  return { peakMb: round(peakKb / 1024), how: '/proc VmHWM, polled', summary: tickSummary({ code, stdout, stderr: '', wallMs: 0 }) };
}

// The floor under any tick that reaches Cloud Run through @google-cloud/run: node, the package loaded,
// its two clients built, and one runJob and one getExecution answered. Nothing of tickrun's is loaded.
const CLIENT_FLOOR = `
const { JobsClient, ExecutionsClient } = require('@google-cloud/run');
const { PassThroughClient } = require('google-auth-library');
const url = new URL('http://' + process.env.CLOUD_RUN_EMULATOR_HOST);
const options = { fallback: true, protocol: 'http', apiEndpoint: url.hostname, port: Number(url.port),
  authClient: new PassThroughClient({ transporterOptions: { fetchImplementation: fetch } }) };
(async () => {
  const [operation] = await new JobsClient(options).runJob({ name: 'projects/p/locations/l/jobs/floor' }, { timeout: 30000 });
  await new ExecutionsClient(options).getExecution({ name: operation.metadata.name }, { timeout: 30000 });
  process.exit(0);
})();`;

/** Peak RSS (MB) of the bare client doing one runJob and one getExecution (CLIENT_FLOOR). */
async function clientFloorMb(bench: Bench): Promise<number> {
  const result = await runChild(TIME, ['-v', process.execPath, '-e', CLIENT_FLOOR], bench.env);
  const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(result.stderr)?.[1]);
  if (result.code !== 0 || !kb) throw new Error(`the client floor process failed: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return round(kb / 1024);
}

export async function measurePeakRss(bench: Bench): Promise<Measured> {
  // 10K executions in flight, then 10K more tasks queued beside them.
  await seedInFlight(bench, 10_000);
  await seedRun(bench, 10_000, { clear: false });
  bench.emu.latencyMs = 20;
  const profile = await tickPeakRss(bench, { TICKRUN_PROFILE: 'high_throughput' });
  // The worst a single cycle can hold: the whole backlog in one batch (full run only, it takes a while).
  bench.emu.latencyMs = 0;
  const whole = bench.quick ? undefined : await tickPeakRss(bench, { TICKRUN_PROFILE: 'high_throughput', TICKRUN_BATCH_SIZE: '10000' });
  // For reference: the same command over an empty queue (what loading the CLI and one idle cycle cost).
  await clearRuns(bench.pool);
  const idle = await tickPeakRss(bench, { TICKRUN_PROFILE: 'high_throughput' });
  const floorMb = fs.existsSync(TIME) ? await clientFloorMb(bench) : undefined;
  const worst = Math.max(profile.peakMb, whole?.peakMb ?? 0);
  const figures = {
    how: profile.how, idleQueuePeakMb: idle.peakMb, clientFloorMb: floorMb,
    highThroughput: { peakMb: profile.peakMb, dispatched: profile.summary.dispatched, checked: profile.summary.checked },
    ...(whole && { batch10000: { peakMb: whole.peakMb, dispatched: whole.summary.dispatched, checked: whole.summary.checked } }),
  };
  return {
    figures,
    row: {
      scenario: '7. peak RSS of one `tickrun tick`, 10K tasks queued and 10K in flight',
      ours: `${profile.peakMb} MB (high_throughput: ${profile.summary.dispatched} dispatched, ${profile.summary.checked} checked)` +
        (whole ? `; ${whole.peakMb} MB with batch 10000 (${whole.summary.dispatched} dispatched, ${whole.summary.checked} checked)` : ''),
      note: '—',
      baseline: `the same command over an empty queue: ${idle.peakMb} MB; the bare @google-cloud/run client, one runJob and one getExecution: ${floorMb ?? '?'} MB (${profile.how})`,
      target: `under 100 MB: ${worst < 100 ? 'met' : 'NOT met'}`,
    },
  };
}

/** Milliseconds from spawning functions-framework on dist/tick.js to the first POST answered 200. */
async function coldStart(bench: Bench): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, ['node_modules/@google-cloud/functions-framework/build/src/main.js', '--target=tick', `--port=${port}`], {
    env: { ...process.env, ...bench.env }, stdio: 'ignore',
  });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`functions-framework exited ${child.exitCode} before answering`);
      if (performance.now() - t0 > 30_000) throw new Error('functions-framework did not answer a tick within 30 s');
      try {
        const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
        await res.text();
        if (res.status === 200) return performance.now() - t0;
      } catch {
        // not listening yet
      }
      await sleep(5);
    }
  } finally {
    child.kill();
    await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
  }
}

export async function measureBundle(bench: Bench): Promise<Measured> {
  const bundle = fs.readFileSync('dist/tick.js');
  const gzipped = zlib.gzipSync(bundle, { level: 9 }).length;
  await clearRuns(bench.pool);
  bench.emu.latencyMs = 0;
  const tries = bench.quick ? 3 : 5;
  const starts: number[] = [];
  for (let i = 0; i < tries; i++) starts.push(await coldStart(bench));
  const figures = {
    bundleBytes: bundle.length, gzippedBytes: gzipped,
    coldStartMs: { median: round(median(starts), 0), tries: starts.map((s) => round(s, 0)) },
  };
  return {
    figures,
    row: {
      scenario: '8. function bundle (dist/tick.js) and cold start to the first tick answered (empty queue)',
      ours: `${round(bundle.length / 1e6, 2)} MB, ${round(gzipped / 1e6, 2)} MB gzipped; cold start ${figures.coldStartMs.median} ms median of ${tries}`,
      note: '—',
      baseline: 'functions-framework on node, this machine',
      target: '—',
    },
  };
}
