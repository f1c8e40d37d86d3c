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

// Words that run no program of the image: bash's keywords and builtins.
const KEYWORDS = new Set(['if', 'then', 'else', 'elif', 'do', 'while', 'until', '!', 'time']);
const BUILTINS = new Set(['echo', 'printf', 'exit', 'set', 'export', 'cd', 'test', '[', '[[', 'true', 'false', 'read', 'local', 'return', 'shift', 'unset', ':', 'fi', 'done', '{', '}']);

/**
 * Cuts each `$( … )` out of a script (also inside double quotes): the outer text with a placeholder word
 * in its place, and the inner scripts, read as scripts of their own.
 */
function commandSubstitutions(script: string): { outer: string; inner: string[] } {
  const inner: string[] = [];
  let outer = '';
  for (let i = 0; i < script.length; i++) {
    if (script[i] === '$' && script[i + 1] === '(' && script[i - 1] !== '$') {
      let depth = 1;
      let j = i + 2;
      for (; j < script.length && depth > 0; j++) depth += script[j] === '(' ? 1 : script[j] === ')' ? -1 : 0;
      if (depth > 0) throw new Error('the script has an unclosed $(');
      inner.push(script.slice(i + 2, j - 1));
      outer += 'SUBSTITUTED';
      i = j - 1;
    } else outer += script[i];
  }
  return { outer, inner };
}

/**
 * The programs a bash script calls, each with its words, in order: commands split on newlines, `;`,
 * `&&`, `||` and `|`, those inside `$( … )` read too, comments, keywords and leading `VAR=value`
 * dropped, builtins left out. Refuses what it cannot read reliably (here-documents, backticks,
 * functions, loops, case) rather than guess.
 */
export function scriptCommands(script: string): string[][] {
  for (const [pattern, what] of [[/<</, 'a here-document'], [/`/, 'backticks'], [/\(\)\s*\{/, 'a function'], [/^\s*(for|case)\b/m, 'for/case']] as const) {
    if (pattern.test(script)) throw new Error(`the script uses ${what}, which scriptCommands does not read: keep build scripts simple`);
  }
  const { outer, inner } = commandSubstitutions(script);
  // Redirections to a descriptor (>&2, 2>&1) are not separators.
  const text = outer.replace(/[0-9]*[<>]&[0-9]+/g, ' ');
  const segments: string[][] = [];
  let words: string[] = [];
  let word = '';
  let quote: string | null = null;
  const endWord = () => {
    if (word) words.push(word);
    word = '';
  };
  const endSegment = () => {
    endWord();
    if (words.length) segments.push(words);
    words = [];
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
      else word += c;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && word === '') while (i + 1 < text.length && text[i + 1] !== '\n') i++;
    else if ('\n;|&()'.includes(c)) endSegment();
    else if (c === '\\' && text[i + 1] === '\n') i++;
    else if (/\s/.test(c)) endWord();
    else word += c;
  }
  if (quote) throw new Error('the script has an unclosed quote');
  endSegment();
  const own = segments
    .map((w) => {
      let i = 0;
      while (i < w.length && (KEYWORDS.has(w[i]) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(w[i]))) i++;
      return w.slice(i);
    })
    .filter((w) => w.length > 0 && !BUILTINS.has(w[0]) && !/^[<>]/.test(w[0]));
  return [...own, ...inner.flatMap(scriptCommands)];
}

/** The script of a step run as `bash -c SCRIPT` (or with options before -c, as `bash -euo pipefail -c`); null otherwise. */
export function bashScriptOf(step: Step): string | null {
  if (step.entrypoint !== 'bash' && step.entrypoint !== 'sh') return null;
  const args = step.args ?? [];
  const c = args.indexOf('-c');
  return c === -1 ? null : args[c + 1];
}

/**
 * The programs a step runs, each with its words: the entrypoint (the image's own when the step sets
 * none) with the args, or, for a `bash -c` script, every program the script calls.
 */
export function commandsOf(step: Step, imageEntrypoint: string | null): string[][] {
  const script = bashScriptOf(step);
  if (script !== null) return scriptCommands(script);
  const entrypoint = step.entrypoint ?? imageEntrypoint;
  if (!entrypoint) throw new Error(`step ${step.id} sets no entrypoint and its image ${step.name} has none to fall back on`);
  return [[entrypoint, ...(step.args ?? [])]];
}

/**
 * The substitutions a build config uses, as Cloud Build reads them: `$NAME` and `${NAME}` anywhere in
 * the steps (`$$` is a literal dollar, left to the shell); YAML comments are not part of the config.
 */
export function substitutionsUsed(value: unknown): Set<string> {
  const used = new Set<string>();
  const visit = (v: unknown): void => {
    if (typeof v === 'string') for (const m of v.replace(/\$\$/g, '').matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g)) used.add(m[1]);
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') Object.values(v).forEach(visit);
  };
  visit(value);
  return used;
}

/**
 * A value as Cloud Build substitutes it: `$NAME`/`${NAME}` replaced from `values`, `$$` left as one `$`.
 * Throws naming a substitution that `values` lacks, as Cloud Build refuses an undefined one.
 */
export function substitute(text: string, values: Record<string, string>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (all, braced, bare) => {
    if (all === '$$') return '$';
    const name = braced ?? bare;
    if (!(name in values)) throw new Error(`no value for substitution ${name}`);
    return values[name];
  });
}
