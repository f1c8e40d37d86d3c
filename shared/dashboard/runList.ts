import type { Pool } from 'pg';
import { RUN_STATUSES } from '../lifecycle';
import { checkRunId, listRunPage, type Run, type RunFilter } from '../model/runs';
import { WORKFLOW_NAME, WORKFLOW_NAME_RULE } from '../workflows/definition';
import { HttpError, checkParams, readLimit, readOneOf } from './http';

const CURSOR_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** One line of the runs page: a Run without what only its own page shows. */
export type RunSummary = Omit<Run, 'params' | 'triggeredBy'>;

/**
 * Reads the runs page's query string: `workflow`, `status`, `limit` (1-200, default 50) and `cursor`
 * (the `nextCursor` of the page before). HttpError 400 naming the parameter that is wrong.
 */
export function parseRunFilter(query: URLSearchParams): RunFilter {
  checkParams(query, '/api/runs', ['workflow', 'status', 'limit', 'cursor']);
  const filter: RunFilter = { limit: readLimit(query, 200, 50) };
  const workflow = query.get('workflow');
  if (workflow) {
    if (!WORKFLOW_NAME.test(workflow)) throw new HttpError(400, `workflow "${workflow}" is not a workflow name: ${WORKFLOW_NAME_RULE}`);
    filter.workflow = workflow;
  }
  filter.status = readOneOf(query, 'status', RUN_STATUSES, 'run status');
  const cursor = query.get('cursor');
  if (cursor) filter.after = decodeCursor(cursor);
  return filter;
}

/** A cursor names the last run of a page by its exact creation time (microseconds) and id. */
function encodeCursor({ createdAt, id }: { createdAt: string; id: string }): string {
  return Buffer.from(`${createdAt}|${id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const [createdAt, id, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  try {
    if (rest.length > 0 || !CURSOR_AT.test(createdAt ?? '')) throw new Error('not a cursor');
    return { createdAt, id: checkRunId(id ?? '') };
  } catch {
    throw new HttpError(400, `cursor "${cursor}" is not valid: pass the nextCursor of a previous page as it was given`);
  }
}

/** The runs page's answer: one page of runs, latest first, and the cursor of the next page (null on the last one). */
export async function listRunSummaries(pool: Pool, filter: RunFilter): Promise<{ runs: RunSummary[]; nextCursor: string | null }> {
  const { runs, next } = await listRunPage(pool, filter);
  return { runs: runs.map(({ params, triggeredBy, ...summary }) => summary), nextCursor: next ? encodeCursor(next) : null };
}
