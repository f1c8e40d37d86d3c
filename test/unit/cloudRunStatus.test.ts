import type { protos } from '@google-cloud/run';
import jsonProtos from '@google-cloud/run/build/protos/protos.json';
import { Root, type INamespace } from 'protobufjs';
import { executionStatus, operationExecution } from '../../shared/executors/cloudRunStatus';
import type { ExecutionStatus } from '../../shared/executors/executor';

type Execution = protos.google.cloud.run.v2.IExecution;

/** An execution of two tasks that has started and ended as `state` says, its Completed condition saying 'm'. */
const end = (state: unknown, executionReason?: unknown, counts: Record<string, number> = {}): Execution =>
  ({ taskCount: 2, ...counts, conditions: [{ type: 'Started', state: 4 }, { type: 'Completed', state, executionReason, message: 'm' } as never] });

/** Condition.CommonReason numbers, from the package's protos. */
const COMMON_REASON = jsonProtos.nested.google.nested.cloud.nested.run.nested.v2.nested.Condition.nested.CommonReason.values;
/** An execution whose one task never started: its Completed condition failed with a CommonReason. */
const notStarted = (reason: unknown): Execution =>
  ({ taskCount: 1, conditions: [{ type: 'Completed', state: 'CONDITION_FAILED', reason, message: 'Image gcr.io/p1/etl:latest not found.' } as never] });

describe('executionStatus', () => {
  it.each<[string, Execution, ExecutionStatus]>([
    ['succeeded, enums as names (getExecution)', end('CONDITION_SUCCEEDED', undefined, { succeededCount: 2 }), { state: 'success' }],
    ['succeeded, enums as numbers (operation metadata)', end(4, 0, { succeededCount: 2 }), { state: 'success' }],
    ['failed, enums as names', end('CONDITION_FAILED', 'NON_ZERO_EXIT_CODE', { failedCount: 1 }), { state: 'failed', error: 'm (1 of 2 tasks failed, 0 succeeded)' }],
    ['failed, enums as numbers', end(3, 2, { failedCount: 1 }), { state: 'failed', error: 'm (1 of 2 tasks failed, 0 succeeded)' }],
    ['failed, a numeric state with a named reason', end(3, 'NON_ZERO_EXIT_CODE', { failedCount: 2 }), { state: 'failed', error: 'm (2 of 2 tasks failed, 0 succeeded)' }],
    ['reconciling, by name', end('CONDITION_RECONCILING'), { state: 'running' }],
    ['pending, by number', end(1), { state: 'running' }],
    ['pending, by name', end('CONDITION_PENDING'), { state: 'running' }],
    ['a state left unspecified', end(0), { state: 'running' }],
    ['a state number the protos do not know', end(99), { state: 'running' }],
    ['no conditions yet', { conditions: [] }, { state: 'running' }],
    ['no conditions field at all', {}, { state: 'running' }],
    ['started, not completed', { conditions: [{ type: 'Started', state: 'CONDITION_SUCCEEDED' }] }, { state: 'running' }],
  ])('reads the Completed condition whether its enums are names or numbers: %s', (_what, execution, expected) => {
    expect(executionStatus(execution)).toEqual(expected);
  });

  it.each<[string, Execution, ExecutionStatus]>([
    ['reason CANCELLED, even with a failed task', end('CONDITION_FAILED', 'CANCELLED', { failedCount: 1, cancelledCount: 1 }), { state: 'cancelled', message: 'm' }],
    ['reason CANCELLED by number, even with a failed task', end(3, 3, { failedCount: 1 }), { state: 'cancelled', message: 'm' }],
    ['CANCELLING: still running', end('CONDITION_RECONCILING', 'CANCELLING', { cancelledCount: 1 }), { state: 'running' }],
    ['no reason, tasks cancelled and none failed', end('CONDITION_FAILED', undefined, { cancelledCount: 2 }), { state: 'cancelled', message: 'm' }],
    ['succeeded with a task cancelled and none failed', end('CONDITION_SUCCEEDED', undefined, { succeededCount: 1, cancelledCount: 1 }), { state: 'cancelled', message: 'm' }],
    ['cancelled, with no message', { taskCount: 1, cancelledCount: 1, conditions: [{ type: 'Completed', state: 'CONDITION_FAILED', executionReason: 'CANCELLED' }] }, { state: 'cancelled' }],
    ['a task failed and one cancelled, for another reason', end('CONDITION_FAILED', 'NON_ZERO_EXIT_CODE', { failedCount: 1, cancelledCount: 1 }), { state: 'failed', error: 'm (1 of 2 tasks failed, 0 succeeded)' }],
  ])('calls an execution cancelled by its CANCELLED reason or its counts, keeping Cloud Run\'s message, and running while CANCELLING: %s', (_what, execution, expected) => {
    expect(executionStatus(execution)).toEqual(expected);
  });

  it.each<[string, Execution, ExecutionStatus]>([
    ['completed with a task failed is no success', end('CONDITION_SUCCEEDED', undefined, { failedCount: 1, succeededCount: 1 }), { state: 'failed', error: 'm (1 of 2 tasks failed, 1 succeeded)' }],
    ['no message', { taskCount: 3, failedCount: 3, conditions: [{ type: 'Completed', state: 'CONDITION_FAILED' }] }, { state: 'failed', error: 'execution failed (3 of 3 tasks failed, 0 succeeded)' }],
    ['no task count', { failedCount: 1, conditions: [{ type: 'Completed', state: 'CONDITION_FAILED', message: 'm' }] }, { state: 'failed', error: 'm (1 of ? tasks failed, 0 succeeded)' }],
    ['deleted, no task failed or cancelled', end(3, 5), { state: 'failed', error: 'm (0 of 2 tasks failed, 0 succeeded)' }],
    // Condition reference: a CommonReason (reason) instead of an executionReason when no task could start.
    ['no task could start, the reason by name', notStarted('CONTAINER_MISSING'), { state: 'failed', error: 'CONTAINER_MISSING: Image gcr.io/p1/etl:latest not found. (no task ran)' }],
    ['no task could start, the reason by number', notStarted(COMMON_REASON.CONTAINER_MISSING), { state: 'failed', error: 'CONTAINER_MISSING: Image gcr.io/p1/etl:latest not found. (no task ran)' }],
  ])('says why a failed execution failed, with its task counts: %s', (_what, execution, expected) => {
    expect(executionStatus(execution)).toEqual(expected);
  });
});

describe('operationExecution', () => {
  // The package's own definitions, as the client loads them: bytes encoded here are what Cloud Run sends.
  const type = Root.fromJSON(jsonProtos as INamespace).lookupType('google.cloud.run.v2.Execution');
  const name = 'projects/p1/locations/europe-west1/jobs/nightly/executions/nightly-abcde';
  const bytes = type.encode(type.fromObject({
    name, taskCount: 1, succeededCount: 1, conditions: [{ type: 'Completed', state: 'CONDITION_SUCCEEDED' }],
  })).finish();
  /** The stock decoder's reading (enums as numbers) and cloudRunClients' (enums as names). */
  const stock = (b: Uint8Array) => type.toObject(type.decode(b)) as Execution;
  const named = (b: Uint8Array) => type.toObject(type.decode(b), { enums: String, longs: String }) as Execution;
  /** An operation done with an error: gax leaves `metadata` empty, the Any is in latestResponse. */
  const failedOperation = (value?: Uint8Array | string) => ({
    metadata: null,
    latestResponse: {
      name: 'projects/p1/locations/europe-west1/operations/op-1',
      done: true,
      error: { code: 2, message: 'boom' },
      ...(value !== undefined && { metadata: { type_url: 'type.googleapis.com/google.cloud.run.v2.Execution', value } }),
    },
  });

  it.each<[string, (b: Uint8Array) => Execution, number | string]>([
    ['the stock decoder, enums as numbers', stock, 4],
    ['the decoder set up once, enums as names', named, 'CONDITION_SUCCEEDED'],
  ])('decodes the metadata gax left undecoded, as bytes or as base64, with %s', (_what, decode, state) => {
    for (const value of [bytes, Buffer.from(bytes).toString('base64')]) {
      const decodeExecution = jest.fn(decode);
      const execution = operationExecution(failedOperation(value), decodeExecution);
      expect(execution).toMatchObject({ name, conditions: [{ type: 'Completed', state }] });
      expect(executionStatus(execution!)).toEqual({ state: 'success' });
      expect(Buffer.from(decodeExecution.mock.calls[0][0])).toEqual(Buffer.from(bytes));
    }
  });

  it('takes the Execution gax already decoded, without decoding again', () => {
    const metadata: Execution = { name };
    const decodeExecution = jest.fn(stock);
    expect(operationExecution({ metadata, latestResponse: { name: 'op-1', done: false } }, decodeExecution)).toBe(metadata);
    expect(decodeExecution).not.toHaveBeenCalled();
  });

  it.each<[string, Uint8Array | string | undefined]>([
    ['no metadata', undefined],
    ['metadata with an empty value', ''],
  ])('finds no Execution in an operation with %s', (_what, value) => {
    const decodeExecution = jest.fn(stock);
    expect(operationExecution(failedOperation(value), decodeExecution)).toBeUndefined();
    expect(decodeExecution).not.toHaveBeenCalled();
  });
});
