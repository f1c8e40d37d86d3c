/**
 * The bench's Cloud Run emulator, on a worker thread of its own. In production Cloud Run does its work
 * on Google's machines; in the bench's own event loop the emulator's request handling took its share of
 * the one thread the client (ours and the bare baseline alike) runs on. On its own thread it answers
 * beside the client instead of between its calls.
 *
 * The main thread sets the latency and reads the call counts through shared memory, so both are exact
 * and synchronous, as they were on the in-process emulator; execution names and stop go by message.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { startCloudRunEmulator } from '../test/helpers/cloudRunEmulator';

/** The RPCs the emulator counts, in the order of their counters in shared memory. */
const RPCS = ['runJob', 'getExecution', 'cancelExecution', 'listExecutions', 'getOperation', 'other'] as const;
/** The counter of an RPC: any name the emulator does not list above counts as `other`. */
const counter = (rpc: string | symbol) => 1 + (RPCS.includes(rpc as (typeof RPCS)[number]) ? RPCS.indexOf(rpc as (typeof RPCS)[number]) : RPCS.length - 1);

/** What the bench scenarios use of the emulator. */
export interface BenchEmulator {
  /** '127.0.0.1:PORT' for CLOUD_RUN_EMULATOR_HOST. */
  host: string;
  /** Extra latency per request, ms. */
  latencyMs: number;
  /** Requests per RPC so far (a copy). */
  readonly calls: Record<string, number>;
  /** The names of the executions created so far, oldest first. */
  executionNames(): Promise<string[]>;
  stop(): Promise<void>;
}

type Reply = { id: number; names?: string[]; error?: string };

/** Starts the emulator on a worker thread running `entry` (this module, bundled). */
export async function startEmulatorThread(entry: string): Promise<BenchEmulator> {
  // [0]: latency in ms; [1 + i]: calls of RPCS[i].
  const shared = new Int32Array(new SharedArrayBuffer(4 * (1 + RPCS.length)));
  const worker = new Worker(entry, { workerData: { shared } });
  const pending = new Map<number, (reply: Reply) => void>();
  let nextId = 0;
  const ask = (type: 'names' | 'stop') => new Promise<Reply>((resolve) => {
    const id = nextId++;
    pending.set(id, resolve);
    worker.postMessage({ id, type });
  });
  const host = await new Promise<string>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: { host: string }) => resolve(m.host));
  });
  worker.on('message', (reply: Reply) => pending.get(reply.id)?.(reply));
  worker.on('error', (err) => {
    for (const resolve of pending.values()) resolve({ id: -1, error: String(err) });
  });
  const check = (reply: Reply) => {
    if (reply.error) throw new Error(`emulator thread: ${reply.error}`);
    return reply;
  };
  return {
    host,
    get latencyMs() {
      return Atomics.load(shared, 0);
    },
    set latencyMs(ms: number) {
      Atomics.store(shared, 0, ms);
    },
    get calls() {
      return Object.fromEntries(RPCS.map((rpc, i) => [rpc, Atomics.load(shared, 1 + i)]));
    },
    async executionNames() {
      return check(await ask('names')).names ?? [];
    },
    async stop() {
      check(await ask('stop'));
      await worker.terminate();
    },
  };
}

if (!isMainThread) {
  const shared = workerData.shared as Int32Array;
  void startCloudRunEmulator().then((emu) => {
    // The emulator reads its latency and counts its calls through these properties on every request.
    Object.defineProperty(emu, 'latencyMs', { get: () => Atomics.load(shared, 0) });
    emu.calls = new Proxy({} as Record<string, number>, {
      get: (_, rpc) => Atomics.load(shared, counter(rpc)),
      set: (_, rpc, n: number) => {
        Atomics.store(shared, counter(rpc), n);
        return true;
      },
    });
    parentPort!.on('message', async (m: { id: number; type: 'names' | 'stop' }) => {
      try {
        if (m.type === 'names') parentPort!.postMessage({ id: m.id, names: emu.executions.map((e) => e.name) });
        else {
          await emu.stop();
          parentPort!.postMessage({ id: m.id });
        }
      } catch (err) {
        parentPort!.postMessage({ id: m.id, error: String(err) });
      }
    });
    parentPort!.postMessage({ host: emu.host });
  });
}
