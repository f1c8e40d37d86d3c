// The clients are imported from their own files, not from the package's index: the index also loads
// the package's static protobuf module (2 MB of code), which nothing here needs, and that costs about
// 7 MB of memory in every tick process.
import { ExecutionsClient } from '@google-cloud/run/build/src/v2/executions_client';
import { JobsClient } from '@google-cloud/run/build/src/v2/jobs_client';
import { TasksClient } from '@google-cloud/run/build/src/v2/tasks_client';
import type { protos } from '@google-cloud/run';
import { PassThroughClient } from 'google-auth-library';
import { emulatorClientOptions } from '../emulatorClient';

type Execution = protos.google.cloud.run.v2.IExecution;
type ClientOptions = NonNullable<ConstructorParameters<typeof JobsClient>[0]>;

/** What a protobufjs Type offers once it is set up: its generated decode and toObject. */
interface MessageType {
  setup(): MessageType;
  decode(buffer: Uint8Array): object;
  toObject(message: object, options: { enums: StringConstructor; longs: StringConstructor }): Record<string, unknown>;
}
interface ProtoRoot {
  lookupType(name: string): MessageType;
}
interface LongrunningDescriptor {
  responseDecoder: (buffer: Uint8Array) => unknown;
  metadataDecoder: (buffer: Uint8Array) => unknown;
}

/** The Cloud Run clients the executor uses, and how to read an Execution carried in an operation. */
export interface CloudRunClients {
  jobs: JobsClient;
  executions: ExecutionsClient;
  /**
   * An array execution's tasks, read only when it has ended otherwise than all succeeded (shared/arrays.ts):
   * made at the first such read, so a tick that never reads one holds no third client.
   */
  tasks(): TasksClient;
  /**
   * An Execution from the bytes of an operation's `metadata` or `response`: enums as names, as getExecution
   * gives them, or as numbers where the stock decoder is kept (executionStatus reads both).
   */
  decodeExecution(bytes: Uint8Array): Execution;
  /** The options of one call with its own deadline, and response headers (a field mask) if any. */
  callOptions(timeoutMs: number, headers?: Record<string, string>): CallOptions;
}

type CallOptions = { timeout: number; otherArgs?: { headers: Record<string, string> } };

/** Where the API is. */
export interface ClientTarget {
  emulatorHost?: string;
}

/**
 * The X-Server-Timeout system parameter (cloud.google.com/apis/docs/system-parameters: "timeout for the
 * server to finish processing the request", for REST, where a client-side deadline does not reach the
 * server). Over gRPC the call's deadline travels itself (grpc-timeout).
 */
const SERVER_TIMEOUT = 'x-server-timeout';

/**
 * Builds the clients, then gives their Execution-carrying operations (runJob, cancelExecution) a decoder
 * that is set up once. The generated clients bind each operation's decoder to the type's first
 * `decode`, which sets the type up again on every call: measured, it regenerated protobufjs's encoder,
 * decoder, verifier and converters for each runJob answer, about a fifth of a dispatch's CPU. Auth,
 * deadlines and error mapping stay the client's own.
 */
export function createCloudRunClients(target: ClientTarget): CloudRunClients {
  const options = clientOptions(target);
  const jobs = new JobsClient(options);
  const executions = new ExecutionsClient(options);
  let tasksClient: TasksClient | undefined;
  const tasks = () => (tasksClient ??= new TasksClient(options));
  // The client's own loaded protos: the same definitions its decoders use, without loading them twice.
  const root = (jobs as unknown as { _protos?: ProtoRoot })._protos;
  const type = root?.lookupType('google.cloud.run.v2.Execution').setup();
  const decodeExecution = type
    ? (bytes: Uint8Array) => type.toObject(type.decode(bytes), { enums: String, longs: String }) as Execution
    : (bytes: Uint8Array) => jobs.descriptors.longrunning.runJob.metadataDecoder(bytes) as Execution;
  if (type) {
    const longrunning = [jobs.descriptors.longrunning.runJob, executions.descriptors.longrunning.cancelExecution];
    for (const descriptor of longrunning as LongrunningDescriptor[]) {
      descriptor.responseDecoder = decodeExecution;
      descriptor.metadataDecoder = decodeExecution;
    }
  }
  const rest = target.emulatorHost !== undefined;
  // A fresh object per call: the client writes routing headers into the options it is given.
  const callOptions = (timeoutMs: number, headers: Record<string, string> = {}): CallOptions => {
    const all = rest ? { ...headers, [SERVER_TIMEOUT]: (timeoutMs / 1000).toFixed(3) } : headers;
    return { timeout: timeoutMs, ...(Object.keys(all).length > 0 && { otherArgs: { headers: all } }) };
  };
  return { jobs, executions, tasks, decodeExecution, callOptions };
}

/**
 * The client's transport in REST mode, holding each request to its own deadline. gax never hands a
 * call's deadline to fetch in REST mode (measured: a call with { timeout: 300 } waited the full 2 s the
 * emulator took), so the deadline travels in the request's X-Server-Timeout and is enforced here. Not
 * with gaxios's own `timeout`, which joins its timer to gax's cancel signal with AbortSignal.any: in a
 * full test run a request held 2.5 s was once answered under a 2 s deadline that way.
 * The timer here is held until the request ends, and aborts it as gaxios's would: a TimeoutError, which
 * callError reads as no answer within the deadline.
 */
class DeadlineClient extends PassThroughClient {
  override request<T>(opts: Parameters<PassThroughClient['request']>[0]) {
    const ms = Math.round(Number(new Headers(opts.headers).get(SERVER_TIMEOUT)) * 1000);
    if (!(ms > 0)) return super.request<T>(opts);
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError')), ms);
    const cancelled = opts.signal as AbortSignal | undefined;
    cancelled?.addEventListener('abort', () => deadline.abort(cancelled.reason), { once: true });
    return super.request<T>({ ...opts, signal: deadline.signal }).finally(() => clearTimeout(timer));
  }
}

/** REST over plain HTTP without credentials for an emulator; the default (gRPC, ambient credentials) otherwise. */
function clientOptions({ emulatorHost }: ClientTarget): ClientOptions {
  if (!emulatorHost) return {};
  // Without fetchImplementation gaxios imports node-fetch dynamically, which jest refuses.
  // The cast: google-gax types authClient with its own nested copy of google-auth-library, so
  // TypeScript sees two unrelated AuthClient classes; at run time gax only calls fetch on it.
  return emulatorClientOptions(emulatorHost, new DeadlineClient({ transporterOptions: { fetchImplementation: fetch } })) as ClientOptions;
}
