import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UsageError, WorkflowError } from '../errors';
import type { WorkflowDefinition } from './definition';
import { checkWorkflow } from './parse';

const WORKFLOW_FILE = /\.ya?ml$/i;

/**
 * Every problem found in a set of workflow files, one per line of the message, so `validate` and
 * `apply` report them all at once instead of one per attempt.
 */
export class WorkflowErrors extends UsageError {
  constructor(readonly errors: WorkflowError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.name = 'WorkflowErrors';
  }
}

/** One workflow file read and checked: where it is and what it declares. */
export interface LoadedWorkflow {
  file: string;
  definition: WorkflowDefinition;
}

/**
 * Reads the workflows at `paths`, each a file (any extension: it was named on purpose) or a folder
 * searched recursively for `.yaml`/`.yml` files, skipping hidden entries and node_modules. Files
 * come back in the order of `paths`, each folder's sorted by name. Throws one WorkflowErrors
 * listing every problem in every file, each missing path, each folder without workflow files, and
 * each workflow name declared by a second file.
 */
export async function loadWorkflowFiles(paths: string[]): Promise<LoadedWorkflow[]> {
  if (paths.length === 0) throw new UsageError('no workflow file or folder given');
  const errors: WorkflowError[] = [];
  const files: string[] = [];
  for (const given of paths) {
    for (const file of await workflowFilesAt(given, errors)) {
      // The same file reached through two paths is read once, not reported as a duplicate name.
      if (!files.some((seen) => path.resolve(seen) === path.resolve(file))) files.push(file);
    }
  }
  const loaded: LoadedWorkflow[] = [];
  const declaredIn = new Map<string, string>();
  for (const file of files) {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      errors.push(new WorkflowError(file, undefined, undefined, `cannot be read: ${(err as Error).message}`));
      continue;
    }
    const check = checkWorkflow(text, file);
    errors.push(...check.errors);
    if (!check.definition) continue;
    const { name } = check.definition;
    const first = declaredIn.get(name);
    if (first) {
      errors.push(new WorkflowError(file, undefined, 'name', `workflow "${name}" is also declared in ${first}; workflow names must be unique`));
      continue;
    }
    declaredIn.set(name, file);
    loaded.push({ file, definition: check.definition });
  }
  if (errors.length > 0) throw new WorkflowErrors(errors);
  return loaded;
}

/** The workflow files a path names; a missing path or an empty folder is recorded in `errors`. */
async function workflowFilesAt(given: string, errors: WorkflowError[]): Promise<string[]> {
  let stat;
  try {
    stat = await fs.stat(given);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    errors.push(new WorkflowError(given, undefined, undefined, missing ? 'no such file or folder' : `cannot be read: ${(err as Error).message}`));
    return [];
  }
  if (!stat.isDirectory()) return [given];
  const found = await filesUnder(given);
  if (found.length === 0) errors.push(new WorkflowError(given, undefined, undefined, 'this folder holds no workflow files (.yaml or .yml)'));
  return found;
}

/** `.yaml`/`.yml` files under a folder, sorted; symlinked folders are not followed, so a link loop cannot hang. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await filesUnder(full)));
    else if ((entry.isFile() || entry.isSymbolicLink()) && WORKFLOW_FILE.test(entry.name)) files.push(full);
  }
  return files;
}
