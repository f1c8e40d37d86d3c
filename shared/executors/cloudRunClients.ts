// The two clients are imported from their own files, not from the package's index: the index also loads
// the package's static protobuf module (2 MB of code), which nothing here needs, and that costs about
// 7 MB of memory in every tick process.
import { ExecutionsClient } from '@google-cloud/run/build/src/v2/executions_client';
import { JobsClient } from '@google-cloud/run/build/src/v2/jobs_client';
import type { protos } from '@google-cloud/run';
import { PassThroughClient } from 'google-auth-library';

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
   * An Execution from the bytes of an operation's `metadata` or `response`: enums as names, as getExecution
   * gives them, or as numbers where the stock decoder is kept (executionStatus reads both).
   */
  decodeExecution(bytes: Uint8Array): Execution;
}

/** Where the API is and the deadline of each call. */
export interface ClientTarget {
  emulatorHost?: string;
  apiTimeoutMs: number;
}

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
  return { jobs, executions, decodeExecution };
}

/** REST over plain HTTP without credentials for an emulator; the default (gRPC, ambient credentials) otherwise. */
function clientOptions({ emulatorHost, apiTimeoutMs }: ClientTarget): ClientOptions {
  if (!emulatorHost) return {};
  const url = new URL(`http://${emulatorHost}`);
  return {
    fallback: true,
    protocol: 'http',
    apiEndpoint: url.hostname,
    port: Number(url.port || 80),
    // Without fetchImplementation gaxios imports node-fetch dynamically, which jest refuses. The
    // timeout is here because in REST mode gax never hands the call's deadline to fetch: measured,
    // a call with { timeout: 300 } waited the full 2 s the emulator took.
    // The cast: google-gax types authClient with its own nested copy of google-auth-library, so
    // TypeScript sees two unrelated AuthClient classes; at run time gax only calls fetch on it.
    authClient: new PassThroughClient({
      transporterOptions: { fetchImplementation: fetch, timeout: apiTimeoutMs },
    }) as unknown as ClientOptions['authClient'],
  };
}
