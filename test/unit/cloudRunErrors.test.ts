import { CloudRunCallError, callError, dispatchRefusal } from '../../shared/executors/cloudRunErrors';
import { ExecutorFault, ExecutorRefusal } from '../../shared/executors/executor';

const JOB = 'projects/p1/locations/europe-west1/jobs/nightly';
const EXECUTION = `${JOB}/executions/nightly-abcde`;

/** google.rpc.Code by name, as https://github.com/googleapis/googleapis/blob/master/google/rpc/code.proto numbers them. */
const CODE = {
  CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

/** As grpc-js rejects a call (callErrorFromStatus): the numeric code, its details, both in the message. */
const grpc = (status: keyof typeof CODE, details: string) =>
  Object.assign(new Error(`${CODE[status]} ${status}: ${details}`), { code: CODE[status], details, metadata: {} });

/**
 * As gaxios rejects an HTTP error answer (REST): the HTTP status as `status` and `code`, the body as the
 * message and as `response.data` (text, or JSON when parsed), and what it read of it as the cause.
 */
function gaxios(status: number, statusText: string, body: string, data: unknown = body) {
  const cause = { message: body, code: status, status: statusText };
  return Object.assign(new Error(body, { cause }), { code: status, status, response: { status, statusText, data } });
}
/** A google.rpc.Status body, as Google APIs answer an error over HTTP. */
const rpcStatus = (code: number, status: string, message: string) => JSON.stringify({ error: { code, status, message } });

/** As undici rejects a fetch that got no answer: "fetch failed", the reason at the end of its causes. */
const fetchFailed = (reason: Error) => new TypeError('fetch failed', { cause: reason });
/** The same, once gaxios has wrapped it. */
const gaxiosFetchFailed = (reason: Error) => new Error('fetch failed', { cause: fetchFailed(reason) });
/** A node system error or an undici error: a message, a `code`, and undici's class name. */
const netError = (message: string, code: string, name = 'Error') => Object.assign(new Error(message), { code, name });

/** A cause chain that comes back to its start. */
const looping = () => {
  const err = new Error('fetch failed');
  return Object.assign(err, { cause: err });
};

type Outcome = { fault: ExecutorFault['kind'] } | { refused: string | undefined };
type Row = [what: string, cause: unknown, outcome: Outcome, why: string, call?: [method: string, resource: string]];

describe('callError', () => {
  const check = ([, cause, outcome, why, [method, resource] = ['runJob', JOB]]: Row) => {
    const err = callError(method, resource, 300, cause);
    if ('fault' in outcome) {
      expect(err).toBeInstanceOf(ExecutorFault);
      expect((err as ExecutorFault).kind).toBe(outcome.fault);
    } else {
      expect(err).toBeInstanceOf(CloudRunCallError);
      expect((err as CloudRunCallError).status).toBe(outcome.refused);
    }
    expect(err.message).toBe(`Cloud Run ${method} ${resource}: ${why}`);
    expect(err.cause).toBe(cause);
  };

  it.each<Row>([
    ['RESOURCE_EXHAUSTED', grpc('RESOURCE_EXHAUSTED', 'Quota exceeded'), { fault: 'quota' }, 'RESOURCE_EXHAUSTED: Quota exceeded'],
    ['UNAVAILABLE, refused by the service', grpc('UNAVAILABLE', 'The service is currently unavailable.'), { fault: 'retryable' }, 'UNAVAILABLE: The service is currently unavailable.'],
    ['UNAVAILABLE, no connection made', grpc('UNAVAILABLE', 'No connection established. Last error: connect ECONNREFUSED 10.0.0.1:443'), { fault: 'retryable' }, 'UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 10.0.0.1:443'],
    // grpc-js says UNAVAILABLE for these too, but the request may have gone out.
    ['UNAVAILABLE, the stream dropped', grpc('UNAVAILABLE', 'Connection dropped'), { fault: 'ambiguous' }, 'UNAVAILABLE: Connection dropped'],
    ['UNAVAILABLE, the connection reset', grpc('UNAVAILABLE', 'read ECONNRESET'), { fault: 'ambiguous' }, 'UNAVAILABLE: read ECONNRESET'],
    ['UNAVAILABLE, the connection timed out', grpc('UNAVAILABLE', 'read ETIMEDOUT'), { fault: 'ambiguous' }, 'UNAVAILABLE: read ETIMEDOUT'],
    ['INTERNAL', grpc('INTERNAL', 'Received RST_STREAM with code 2'), { fault: 'ambiguous' }, 'INTERNAL: Received RST_STREAM with code 2'],
    ['UNKNOWN', grpc('UNKNOWN', 'Unknown'), { fault: 'ambiguous' }, 'UNKNOWN: Unknown'],
    ['DEADLINE_EXCEEDED', grpc('DEADLINE_EXCEEDED', 'Deadline exceeded after 0.301s'), { fault: 'ambiguous' }, 'DEADLINE_EXCEEDED: Deadline exceeded after 0.301s'],
    ['CANCELLED', grpc('CANCELLED', 'Cancelled on client'), { fault: 'ambiguous' }, 'CANCELLED: Cancelled on client'],
    ['DATA_LOSS', grpc('DATA_LOSS', 'Data loss'), { fault: 'ambiguous' }, 'DATA_LOSS: Data loss'],
    ['NOT_FOUND', grpc('NOT_FOUND', 'Job not found'), { refused: 'NOT_FOUND' }, 'NOT_FOUND: Job not found'],
    ['INVALID_ARGUMENT', grpc('INVALID_ARGUMENT', 'Invalid overrides'), { refused: 'INVALID_ARGUMENT' }, 'INVALID_ARGUMENT: Invalid overrides'],
    ['PERMISSION_DENIED', grpc('PERMISSION_DENIED', 'Permission denied'), { refused: 'PERMISSION_DENIED' }, 'PERMISSION_DENIED: Permission denied'],
    // An access token that expired: the client fetches a new one for the next call, nothing was done.
    ['UNAUTHENTICATED', grpc('UNAUTHENTICATED', 'Request had invalid authentication credentials.'), { fault: 'retryable' }, 'UNAUTHENTICATED: Request had invalid authentication credentials.'],
    // google.rpc.Code: ABORTED is a concurrency conflict, to retry "at a higher level"; nothing was done.
    ['ABORTED', grpc('ABORTED', 'Concurrent modification'), { fault: 'retryable' }, 'ABORTED: Concurrent modification'],
    ['FAILED_PRECONDITION, cancelling a finished execution', grpc('FAILED_PRECONDITION', 'Execution has already completed.'), { refused: 'FAILED_PRECONDITION' }, 'FAILED_PRECONDITION: Execution has already completed.', ['cancelExecution', EXECUTION]],
  ])('reads a gRPC error by its code, and tells a stream dropped after sending from a plain refusal: %s', (...row) => check(row));

  it.each<Row>([
    ['429 RESOURCE_EXHAUSTED', gaxios(429, 'Too Many Requests', rpcStatus(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded for quota metric')), { fault: 'quota' }, 'RESOURCE_EXHAUSTED: Quota exceeded for quota metric'],
    ['429 RESOURCE_EXHAUSTED, body parsed as JSON', gaxios(429, 'Too Many Requests', 'Quota exceeded for quota metric', JSON.parse(rpcStatus(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded for quota metric'))), { fault: 'quota' }, 'RESOURCE_EXHAUSTED: Quota exceeded for quota metric'],
    ['503 UNAVAILABLE', gaxios(503, 'Service Unavailable', rpcStatus(503, 'UNAVAILABLE', 'The service is currently unavailable.')), { fault: 'retryable' }, 'UNAVAILABLE: The service is currently unavailable.'],
    ['500 INTERNAL', gaxios(500, 'Internal Server Error', rpcStatus(500, 'INTERNAL', 'Internal error encountered.')), { fault: 'ambiguous' }, 'INTERNAL: Internal error encountered.'],
    ['500 UNKNOWN', gaxios(500, 'Internal Server Error', rpcStatus(500, 'UNKNOWN', 'Unknown error')), { fault: 'ambiguous' }, 'UNKNOWN: Unknown error'],
    ['504 DEADLINE_EXCEEDED', gaxios(504, 'Gateway Timeout', rpcStatus(504, 'DEADLINE_EXCEEDED', 'Deadline exceeded')), { fault: 'ambiguous' }, 'DEADLINE_EXCEEDED: Deadline exceeded'],
    ['404 NOT_FOUND, an execution gone', gaxios(404, 'Not Found', rpcStatus(404, 'NOT_FOUND', "Resource 'nightly-abcde' could not be found.")), { refused: 'NOT_FOUND' }, "NOT_FOUND: Resource 'nightly-abcde' could not be found.", ['getExecution', EXECUTION]],
    ['404 NOT_FOUND, a job that does not exist', gaxios(404, 'Not Found', rpcStatus(404, 'NOT_FOUND', "Resource 'namespaces/p1/jobs/nightly' could not be found.")), { refused: 'NOT_FOUND' }, "NOT_FOUND: Resource 'namespaces/p1/jobs/nightly' could not be found.", ['listExecutions', JOB]],
    ['400 INVALID_ARGUMENT', gaxios(400, 'Bad Request', rpcStatus(400, 'INVALID_ARGUMENT', 'Invalid value at overrides.task_count')), { refused: 'INVALID_ARGUMENT' }, 'INVALID_ARGUMENT: Invalid value at overrides.task_count'],
    ['403 PERMISSION_DENIED', gaxios(403, 'Forbidden', rpcStatus(403, 'PERMISSION_DENIED', "Permission 'run.jobs.runWithOverrides' denied")), { refused: 'PERMISSION_DENIED' }, "PERMISSION_DENIED: Permission 'run.jobs.runWithOverrides' denied"],
    ['400 FAILED_PRECONDITION, cancelling a finished execution', gaxios(400, 'Bad Request', rpcStatus(400, 'FAILED_PRECONDITION', 'Execution has already completed.')), { refused: 'FAILED_PRECONDITION' }, 'FAILED_PRECONDITION: Execution has already completed.', ['cancelExecution', EXECUTION]],
    ['401 UNAUTHENTICATED', gaxios(401, 'Unauthorized', rpcStatus(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.')), { fault: 'retryable' }, 'UNAUTHENTICATED: Request had invalid authentication credentials.'],
    ['409 ABORTED', gaxios(409, 'Conflict', rpcStatus(409, 'ABORTED', 'Concurrent modification')), { fault: 'retryable' }, 'ABORTED: Concurrent modification'],
  ])('reads a REST error answer by the google.rpc.Status in its body: %s', (...row) => check(row));

  it.each<Row>([
    // It may have reached Cloud Run before the proxy failed.
    ["a proxy's 502 page", gaxios(502, 'Bad Gateway', '<html>Bad Gateway</html>'), { fault: 'ambiguous' }, 'HTTP 502: <html>Bad Gateway</html>'],
    ['a 503 page', gaxios(503, 'Service Unavailable', '<html>Service Unavailable</html>'), { fault: 'retryable' }, 'UNAVAILABLE: <html>Service Unavailable</html>'],
    ['a 429 in plain text', gaxios(429, 'Too Many Requests', 'Too Many Requests'), { fault: 'quota' }, 'RESOURCE_EXHAUSTED: Too Many Requests'],
    ['a 404 page', gaxios(404, 'Not Found', '<html>Not Found</html>'), { refused: 'NOT_FOUND' }, 'NOT_FOUND: <html>Not Found</html>'],
    ['a 401 page, a code with no google.rpc.Code here', gaxios(401, 'Unauthorized', '<html>Unauthorized</html>'), { refused: undefined }, 'HTTP 401: <html>Unauthorized</html>'],
  ])('reads an HTTP answer with no google.rpc.Status by its HTTP status: %s', (...row) => check(row));

  it.each<Row>([
    ["gaxios's own deadline", Object.assign(new Error('The operation was aborted due to timeout', { cause: new DOMException('The operation was aborted due to timeout', 'TimeoutError') }), { code: 'TimeoutError' }), { fault: 'ambiguous' }, 'no answer within 300 ms'],
    ["fetch's timeout signal", new DOMException('The operation was aborted due to timeout', 'TimeoutError'), { fault: 'ambiguous' }, 'The operation was aborted due to timeout'],
    ['a refused connection', fetchFailed(netError('connect ECONNREFUSED 127.0.0.1:9', 'ECONNREFUSED')), { fault: 'retryable' }, 'fetch failed (connect ECONNREFUSED 127.0.0.1:9)'],
    ['a refused connection, through gaxios', gaxiosFetchFailed(netError('connect ECONNREFUSED 127.0.0.1:9', 'ECONNREFUSED')), { fault: 'retryable' }, 'fetch failed (connect ECONNREFUSED 127.0.0.1:9)', ['getExecution', EXECUTION]],
    ['a name not resolved', gaxiosFetchFailed(netError('getaddrinfo EAI_AGAIN run.googleapis.com', 'EAI_AGAIN')), { fault: 'retryable' }, 'fetch failed (getaddrinfo EAI_AGAIN run.googleapis.com)'],
    ['no connection within the connect timeout', gaxiosFetchFailed(netError('Connect Timeout Error (attempted address: run.googleapis.com:443, timeout: 10000ms)', 'UND_ERR_CONNECT_TIMEOUT', 'ConnectTimeoutError')), { fault: 'retryable' }, 'fetch failed (Connect Timeout Error (attempted address: run.googleapis.com:443, timeout: 10000ms))'],
    ['a reset connection', fetchFailed(netError('read ECONNRESET', 'ECONNRESET')), { fault: 'ambiguous' }, 'fetch failed (read ECONNRESET)'],
    ['the other side closed, through gaxios', gaxiosFetchFailed(netError('other side closed', 'UND_ERR_SOCKET', 'SocketError')), { fault: 'ambiguous' }, 'fetch failed (other side closed)', ['cancelExecution', EXECUTION]],
    ['no headers in time', gaxiosFetchFailed(netError('Headers Timeout Error', 'UND_ERR_HEADERS_TIMEOUT', 'HeadersTimeoutError')), { fault: 'ambiguous' }, 'fetch failed (Headers Timeout Error)'],
    ['a body cut short', new TypeError('terminated', { cause: netError('other side closed', 'UND_ERR_SOCKET', 'SocketError') }), { fault: 'ambiguous' }, 'terminated (other side closed)'],
    ["node's socket hang up", netError('socket hang up', 'ECONNRESET'), { fault: 'ambiguous' }, 'socket hang up'],
    ['a broken pipe', new Error('write EPIPE'), { fault: 'ambiguous' }, 'write EPIPE'],
    ['an unreadable body', new SyntaxError('Unexpected end of JSON input'), { fault: 'ambiguous' }, 'unreadable answer: Unexpected end of JSON input'],
    ["gax's empty answer", new Error('Received null response from RPC RunJob'), { fault: 'ambiguous' }, 'Received null response from RPC RunJob'],
    ['a request gax would not send', new Error('Cannot send null request to RPC RunJob.'), { refused: undefined }, 'Cannot send null request to RPC RunJob.'],
    ['a cause chain that loops, with no known reason', looping(), { refused: undefined }, 'fetch failed'],
    ['something thrown that is not an Error', 'boom', { refused: undefined }, 'boom'],
  ])('reads an error with no answer by its causes: none known is a plain error, refused retryable, cut off ambiguous: %s', (...row) => check(row));
});

describe('dispatchRefusal', () => {
  const refusedToRun = (cause: unknown) => dispatchRefusal(JOB, callError('runJob', JOB, 300, cause)) as Error;

  it.each<[string, unknown, RegExp]>([
    ['PERMISSION_DENIED: the permission to run with overrides, and to act as the job\'s service account', grpc('PERMISSION_DENIED', "Permission 'run.jobs.runWithOverrides' denied on resource"),
      /^Cloud Run runJob .*: PERMISSION_DENIED: Permission 'run\.jobs\.runWithOverrides' denied on resource; grant .*run\.jobs\.runWithOverrides on the job .*iam\.serviceAccounts\.actAs on its service account/],
    ['PERMISSION_DENIED over REST', gaxios(403, 'Forbidden', rpcStatus(403, 'PERMISSION_DENIED', "Permission 'run.jobs.run' denied")), /PERMISSION_DENIED: .*; grant /],
    ['NOT_FOUND: the job to create', gaxios(404, 'Not Found', rpcStatus(404, 'NOT_FOUND', `Resource '${JOB}' was not found`)), /NOT_FOUND: .*; create the job projects\/p1\/locations\/europe-west1\/jobs\/nightly, or correct the task's job, project or region$/],
    ['FAILED_PRECONDITION: the job to fix', grpc('FAILED_PRECONDITION', 'Job is not ready'), /FAILED_PRECONDITION: Job is not ready; the job cannot run as it is: fix it/],
    ['INVALID_ARGUMENT: the overrides to correct', grpc('INVALID_ARGUMENT', 'Invalid value at overrides.task_count'), /INVALID_ARGUMENT: .*; correct the task's args, env, task_count or timeout/],
  ])('makes a runJob refusal no retry cures final, saying what to grant, create or fix: %s', (_what, cause, message) => {
    const err = refusedToRun(cause);
    expect(err).toBeInstanceOf(ExecutorRefusal);
    expect(err.cause).toBeInstanceOf(CloudRunCallError);
    expect(err.message).toMatch(message);
  });

  it.each<[string, unknown]>([
    ['UNAVAILABLE', grpc('UNAVAILABLE', 'The service is currently unavailable.')],
    ['UNAUTHENTICATED', grpc('UNAUTHENTICATED', 'Request had invalid authentication credentials.')],
    ['ABORTED', grpc('ABORTED', 'Concurrent modification')],
    ['INTERNAL', grpc('INTERNAL', 'Internal error')],
    ['a plain error', new Error('boom')],
  ])('leaves every other error as it is: %s', (_what, cause) => {
    const err = callError('runJob', JOB, 300, cause);
    expect(dispatchRefusal(JOB, err)).toBe(err);
  });
});
