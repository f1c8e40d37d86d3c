import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { protos } from '@google-cloud/run';

const { State, Severity, ExecutionReason } = protos.google.cloud.run.v2.Condition;
const EXECUTION_TYPE = 'type.googleapis.com/google.cloud.run.v2.Execution';

/** One execution the emulator started, as the tests inspect it. */
export interface EmulatedExecution {
  name: string;
  /** The job's full name, `projects/P/locations/L/jobs/J`. */
  job: string;
  env: Record<string, string>;
  args?: string[];
  taskCount: number;
  /** The `timeout` override (Cloud Run's task timeout), when one was sent. */
  timeoutSeconds?: number;
  createdAt: number;
  /** When it ends or ended: createdAt + durationMs, or the cancel time. */
  finishedAt?: number;
  outcome: 'success' | 'failed';
  durationMs: number;
  failedCount: number;
  cancelled: boolean;
}

/** How a new execution will end. */
export interface Behaviour {
  outcome: 'success' | 'failed';
  durationMs: number;
  failedCount?: number;
}

/** A Cloud Run Admin API v2 (REST) on loopback, for the real client in fallback mode. */
export interface CloudRunEmulator {
  /** '127.0.0.1:PORT' for CLOUD_RUN_EMULATOR_HOST. */
  host: string;
  /** Requests per RPC: runJob, getExecution, cancelExecution, getOperation, other. */
  calls: Record<string, number>;
  executions: EmulatedExecution[];
  /** Decides each new execution's outcome and duration; default reads the execution env: EMU_FAIL ('1' fails, or 'attempts<N' fails while TICKRUN_ATTEMPT < N), EMU_DURATION_MS (default 0). */
  setBehaviour(fn: (e: { job: string; env: Record<string, string>; args?: string[] }) => Behaviour): void;
  /** Extra latency per request, ms (for later benchmarks). */
  latencyMs: number;
  stop(): Promise<void>;
}

/** The default behaviour: what the execution's environment asks for (see CloudRunEmulator.setBehaviour). */
export function behaviourFromEnv({ env }: { env: Record<string, string> }): Behaviour {
  const fail = env.EMU_FAIL ?? '';
  const attemptsBelow = /^attempts<(\d+)$/.exec(fail);
  const failed = fail === '1' || (attemptsBelow !== null && Number(env.TICKRUN_ATTEMPT ?? 1) < Number(attemptsBelow[1]));
  return { outcome: failed ? 'failed' : 'success', durationMs: Number(env.EMU_DURATION_MS ?? 0) };
}

type Answer = { status: number; body: unknown };
const notFound = (what: string): Answer => ({ status: 404, body: { error: { code: 404, message: `Resource '${what}' was not found`, status: 'NOT_FOUND' } } });
const rfc3339 = (ms: number) => new Date(ms).toISOString();

/** The Completed condition: the execution's end, or CONDITION_RECONCILING while it runs. */
function completedCondition(e: EmulatedExecution, ended: boolean): Record<string, string> {
  const at = { type: 'Completed', lastTransitionTime: rfc3339(ended ? e.finishedAt! : e.createdAt) };
  if (!ended) return { ...at, state: 'CONDITION_RECONCILING' };
  // Cloud Run shows a cancellation as a failed Completed condition with reason CANCELLED.
  if (e.cancelled) return { ...at, state: 'CONDITION_FAILED', executionReason: 'CANCELLED', severity: 'ERROR', message: 'The execution was cancelled.' };
  if (e.outcome === 'failed') {
    return { ...at, state: 'CONDITION_FAILED', executionReason: 'NON_ZERO_EXIT_CODE', severity: 'ERROR', message: `Task ${e.name.split('/').pop()}-task0 failed with message: The container exited with an error (exit code 1).` };
  }
  return { ...at, state: 'CONDITION_SUCCEEDED', message: `Execution completed successfully in ${(e.durationMs / 1000).toFixed(2)}s.` };
}

/** The Execution resource as the v2 REST JSON shows it at `now` (enums as names). */
function executionResource(e: EmulatedExecution, now: number): Record<string, unknown> {
  const ended = now >= e.finishedAt!;
  const failed = ended && !e.cancelled ? e.failedCount : 0;
  const started = { type: 'Started', state: 'CONDITION_SUCCEEDED', lastTransitionTime: rfc3339(e.createdAt) };
  return {
    name: e.name,
    // Stable per execution, as a real uid is, without storing one more field.
    uid: crypto.createHash('sha1').update(e.name).digest('hex').slice(0, 32).replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'),
    generation: '1',
    createTime: rfc3339(e.createdAt),
    startTime: rfc3339(e.createdAt),
    updateTime: rfc3339(ended ? e.finishedAt! : e.createdAt),
    ...(ended && { completionTime: rfc3339(e.finishedAt!) }),
    job: e.job.split('/').pop(),
    taskCount: e.taskCount,
    template: {
      containers: [{ image: 'emulated', env: Object.entries(e.env).map(([name, value]) => ({ name, value })), ...(e.args && { args: e.args }) }],
      ...(e.timeoutSeconds !== undefined && { timeout: `${e.timeoutSeconds}s` }),
    },
    reconciling: !ended,
    conditions: [started, completedCondition(e, ended)],
    observedGeneration: '1',
    runningCount: ended ? 0 : e.taskCount,
    succeededCount: ended && !e.cancelled ? Math.max(0, e.taskCount - failed) : 0,
    failedCount: failed,
    cancelledCount: e.cancelled ? e.taskCount : 0,
    etag: `"${e.name}"`,
  };
}

/** Rewrites the Condition enums as numbers, as the API answers when asked `$alt=json;enum-encoding=int` (the client always asks). */
function numericEnums(execution: Record<string, unknown>): Record<string, unknown> {
  const conditions = (execution.conditions as Record<string, string>[]).map((c) => ({
    ...c,
    state: State[c.state as keyof typeof State],
    ...(c.severity && { severity: Severity[c.severity as keyof typeof Severity] }),
    ...(c.executionReason && { executionReason: ExecutionReason[c.executionReason as keyof typeof ExecutionReason] }),
  }));
  return { ...execution, conditions };
}

/** Starts the emulator on 127.0.0.1 on a free port. */
export async function startCloudRunEmulator(opts: { latencyMs?: number } = {}): Promise<CloudRunEmulator> {
  const byName = new Map<string, EmulatedExecution>();
  const operations = new Map<string, { execution: string; kind: 'run' | 'cancel' }>();
  const timers = new Set<NodeJS.Timeout>();
  let behaviour: Parameters<CloudRunEmulator['setBehaviour']>[0] = behaviourFromEnv;
  let stopped = false;

  function operation(kind: 'run' | 'cancel', e: EmulatedExecution, now: number, location: string, name?: string): Record<string, unknown> {
    const opName = name ?? `${location}/operations/${crypto.randomUUID()}`;
    operations.set(opName, { execution: e.name, kind });
    const execution = { '@type': EXECUTION_TYPE, ...executionResource(e, now) };
    if (now < e.finishedAt!) return { name: opName, metadata: execution, done: false };
    // A run that ends in failure fails its operation; a cancelled one ends it without an error.
    const failed = kind === 'run' && !e.cancelled && e.outcome === 'failed';
    const end = failed ? { error: { code: 2, message: completedCondition(e, true).message } } : { response: execution };
    return { name: opName, metadata: execution, done: true, ...end };
  }

  function runJob(job: string, body: string, now: number): Answer {
    const overrides = (JSON.parse(body || '{}') as { overrides?: { containerOverrides?: { args?: string[]; env?: { name: string; value?: string }[]; clearArgs?: boolean }[]; taskCount?: number; timeout?: string } }).overrides ?? {};
    const env: Record<string, string> = {};
    let args: string[] | undefined;
    for (const c of overrides.containerOverrides ?? []) {
      for (const v of c.env ?? []) env[v.name] = v.value ?? '';
      if (c.args || c.clearArgs) args = c.args ?? [];
    }
    const jobId = job.split('/').pop()!;
    let name: string;
    do name = `${job}/executions/${jobId}-${crypto.randomBytes(4).toString('hex').slice(0, 5)}`;
    while (byName.has(name));
    const b = behaviour({ job, env, args });
    const e: EmulatedExecution = {
      name, job, env, args, taskCount: overrides.taskCount ?? 1,
      timeoutSeconds: overrides.timeout === undefined ? undefined : parseFloat(overrides.timeout),
      createdAt: now, finishedAt: now + b.durationMs, outcome: b.outcome, durationMs: b.durationMs,
      failedCount: b.failedCount ?? (b.outcome === 'failed' ? 1 : 0), cancelled: false,
    };
    byName.set(name, e);
    emulator.executions.push(e);
    // Cloud Run answers RunJob as soon as the execution exists, so the answer always shows it
    // just created (an earlier instant than any end), whatever its duration.
    return { status: 200, body: operation('run', e, now - 1, job.replace(/\/jobs\/.*$/, '')) };
  }

  function cancelExecution(name: string, now: number): Answer {
    const e = byName.get(name);
    if (!e) return notFound(name);
    if (now >= e.finishedAt!) {
      return { status: 400, body: { error: { code: 400, message: `Execution ${name} has already finished.`, status: 'FAILED_PRECONDITION' } } };
    }
    Object.assign(e, { cancelled: true, finishedAt: now });
    return { status: 200, body: operation('cancel', e, now, name.replace(/\/jobs\/.*$/, '')) };
  }

  function route(method: string, path: string, body: string): { rpc: string; answer: (now: number) => Answer } {
    let m: RegExpExecArray | null;
    const resource = 'projects/[^/]+/locations/[^/]+';
    if (method === 'POST' && (m = new RegExp(`^/v2/(${resource}/jobs/[^/:]+):run$`).exec(path))) {
      const job = m[1];
      return { rpc: 'runJob', answer: (now) => runJob(job, body, now) };
    }
    if (method === 'GET' && (m = new RegExp(`^/v2/(${resource}/jobs/[^/]+/executions/[^/:]+)$`).exec(path))) {
      const name = m[1];
      return { rpc: 'getExecution', answer: (now) => (byName.has(name) ? { status: 200, body: executionResource(byName.get(name)!, now) } : notFound(name)) };
    }
    if (method === 'POST' && (m = new RegExp(`^/v2/(${resource}/jobs/[^/]+/executions/[^/:]+):cancel$`).exec(path))) {
      const name = m[1];
      return { rpc: 'cancelExecution', answer: (now) => cancelExecution(name, now) };
    }
    if (method === 'GET' && (m = new RegExp(`^/v2/(${resource}/operations/[^/:]+)$`).exec(path))) {
      const name = m[1];
      const op = operations.get(name);
      return { rpc: 'getOperation', answer: (now) => (op ? { status: 200, body: operation(op.kind, byName.get(op.execution)!, now, '', name) } : notFound(name)) };
    }
    return { rpc: 'other', answer: () => notFound(`${method} ${path}`) };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://emulator');
    const { rpc, answer } = route(req.method ?? 'GET', decodeURIComponent(url.pathname), Buffer.concat(chunks).toString());
    emulator.calls[rpc] = (emulator.calls[rpc] ?? 0) + 1;
    if (emulator.latencyMs > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { timers.delete(t); resolve(); }, emulator.latencyMs);
        timers.add(t);
      });
    }
    if (stopped) return;
    let { status, body } = answer(Date.now());
    if ((url.searchParams.get('$alt') ?? '').includes('enum-encoding=int') && status === 200) body = withNumericEnums(body as Record<string, unknown>);
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify(body));
  }

  function withNumericEnums(body: Record<string, unknown>): Record<string, unknown> {
    if (Array.isArray(body.conditions)) return numericEnums(body);
    const out = { ...body };
    for (const key of ['metadata', 'response'] as const) {
      if (out[key]) out[key] = numericEnums(out[key] as Record<string, unknown>);
    }
    return out;
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return;
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 400, message: String(err), status: 'INVALID_ARGUMENT' } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  const emulator: CloudRunEmulator = {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls: { runJob: 0, getExecution: 0, cancelExecution: 0, getOperation: 0, other: 0 },
    executions: [],
    latencyMs: opts.latencyMs ?? 0,
    setBehaviour(fn) {
      behaviour = fn;
    },
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
  return emulator;
}
