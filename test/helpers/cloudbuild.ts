import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

const ROOT = path.resolve(__dirname, '../..');

/** One step of a Cloud Build config, as the build config schema names its fields. */
export interface Step {
  id?: string;
  name: string;
  entrypoint?: string;
  args?: string[];
  env?: string[];
  waitFor?: string[];
  dir?: string;
  script?: string;
}

/** A Cloud Build config file, parsed as written. */
export interface Build {
  steps: Step[];
  substitutions?: Record<string, string>;
  options?: Record<string, unknown>;
  timeout?: string;
  artifacts?: unknown;
}

/** Parses a Cloud Build config of the checkout (`cloudbuild.yaml`, `cloudbuild.deploy.yaml`). */
export function readBuild(file: string): Build {
  return parseYaml(readFileSync(path.join(ROOT, file), 'utf8')) as Build;
}

/** The step whose id is `id`; throws naming the file's ids when there is none. */
export function stepOf(build: Build, id: string): Step {
  const found = build.steps.find((s) => s.id === id);
  if (!found) throw new Error(`no step ${id}; the steps are ${build.steps.map((s) => s.id).join(', ')}`);
  return found;
}

/** A package.json script, split into its `&&`-joined commands, each a list of words. */
function npmScript(name: string): string[][] {
  const scripts = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
  if (!(name in scripts)) throw new Error(`package.json has no script ${name}`);
  return scripts[name].split('&&').map((c) => c.trim().split(/\s+/));
}

/**
 * The arguments jest is given when a step runs, following `npm test` and `npm run X` into package.json
 * (what follows `--` goes to the script's last command); null when the step runs no jest.
 */
export function jestArgsOf(step: Step): string[] | null {
  const words = [step.entrypoint ?? '', ...(step.args ?? [])];
  const fromCommand = (cmd: string[]): string[] | null => {
    // Variables set for the command (CHAOS_SIZE=full jest …) come before it.
    const first = cmd.findIndex((w) => !/^[A-Z_][A-Z0-9_]*=/.test(w));
    const bare = cmd.slice(first);
    if (bare[0] === 'jest') return bare.slice(1);
    if (bare[0] === 'npx' && bare[1] === 'jest') return bare.slice(2);
    return null;
  };
  if (words[0] === 'npm') {
    const rest = words.slice(1);
    const dashes = rest.indexOf('--');
    const extra = dashes === -1 ? [] : rest.slice(dashes + 1);
    const verb = dashes === -1 ? rest : rest.slice(0, dashes);
    const name = verb[0] === 'test' || verb[0] === 't' ? 'test' : verb[0] === 'run' || verb[0] === 'run-script' ? verb[1] : null;
    if (!name) return null;
    const commands = npmScript(name);
    for (const [i, cmd] of commands.entries()) {
      const args = fromCommand(cmd);
      if (args) return i === commands.length - 1 ? [...args, ...extra] : args;
    }
    return null;
  }
  return fromCommand(words);
}

/** The test files jest would run with these arguments, relative to the checkout: jest's own selection. */
export function testsJestRuns(args: string[]): string[] {
  const out = execFileSync(process.execPath, [path.join(ROOT, 'node_modules/jest/bin/jest.js'), '--listTests', ...args], { cwd: ROOT, encoding: 'utf8' });
  return out.split('\n').filter(Boolean).map((f) => path.relative(ROOT, f)).sort();
}

/** Programs a test file needs on the machine, beyond node: a browser for those that drive one. */
export function programsTestNeeds(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  // playwright-core downloads no browser; the tests drive Debian's chromium (test/browser).
  return /from 'playwright-core'/.test(text) ? ['chromium'] : [];
}
