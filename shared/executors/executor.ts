import type { TaskSpec } from '../workflows/definition';

/** Everything an executor needs to start one attempt of one task. */
export interface DispatchRequest {
  taskId: string;
  runId: string;
  workflow: string;
  taskName: string;
  index: number;
  /** From 1. */
  attempt: number;
  params: Record<string, string>;
  spec: TaskSpec;
  /** The workflow file's folder (process tasks run there). */
  workflowDir: string;
}

/** What an executor says of one execution. `running` covers every state before an end. */
export type ExecutionStatus =
  | { state: 'running' }
  | { state: 'success' }
  | { state: 'failed'; error: string }
  | { state: 'cancelled' };

/** Where attempts run. Implementations: executors/cloudRun.ts, executors/process.ts. */
export interface Executor {
  /** Starts one attempt; resolves to the execution's name once the executor has accepted it. */
  dispatch(req: DispatchRequest): Promise<string>;
  /** Reads an execution's state. An execution that no longer exists is `failed` with a clear error. */
  status(executionName: string): Promise<ExecutionStatus>;
  /** Asks the executor to stop an execution; an execution already ended is not an error. */
  cancel(executionName: string): Promise<void>;
}

/** The contract's environment given to every execution, besides the task's own `env`. */
export function executionEnv(req: DispatchRequest): Record<string, string> {
  return {
    ...req.spec.env,
    TICKRUN_WORKFLOW: req.workflow,
    TICKRUN_RUN_ID: req.runId,
    TICKRUN_TASK_ID: req.taskId,
    TICKRUN_TASK_NAME: req.taskName,
    TICKRUN_TASK_INDEX: String(req.index),
    TICKRUN_ATTEMPT: String(req.attempt),
    TICKRUN_PARAMS: JSON.stringify(req.params),
  };
}
