import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseHcl } from '@cdktf/hcl2json';
import type { Command } from 'commander';
import { buildProgram } from '../../functions/cli';
import { readBuild, scriptCommands } from '../helpers/cloudbuild';

// docs/deploy.md takes a first-time user from an empty project to a scheduled DAG with commands only, so
// each command must at least be one its program accepts: every shell block parses (bash -n), tickrun
// lines are checked against the CLI's own parser, terraform and gcloud lines against the lists below.

const ROOT = path.resolve(__dirname, '../..');
const DOC = readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');

/** The fenced blocks of a language, with the line each starts on. */
function blocks(lang: RegExp): { line: number; text: string }[] {
  return [...DOC.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)]
    .filter((m) => lang.test(m[1]))
    .map((m) => ({ line: DOC.slice(0, m.index).split('\n').length, text: m[2] }));
}
const SHELL = blocks(/^(sh|bash|shell)$/);
const COMMANDS = SHELL.flatMap((b) => scriptCommands(b.text).map((words) => ({ line: b.line, words })));
// gcloud and terraform commands quoted in the prose (`gcloud scheduler jobs pause …`) are commands too.
const INLINE = [...DOC.matchAll(/`((?:gcloud|terraform) [^`]+)`/g)].map((m) => ({
  line: DOC.slice(0, m.index).split('\n').length,
  words: scriptCommands(m[1].replace(/\s+/g, ' '))[0],
}));

// Terraform's subcommands and the flags the guide may use with each (-chdir goes before the subcommand).
// Source: https://developer.hashicorp.com/terraform/cli/commands and each subcommand's page there.
const TERRAFORM: Record<string, string[]> = {
  init: ['-backend-config', '-input', '-upgrade', '-reconfigure', '-migrate-state'],
  plan: ['-var', '-var-file', '-out', '-input', '-target', '-destroy'],
  apply: ['-var', '-var-file', '-input', '-target', '-auto-approve'],
  destroy: ['-var', '-var-file', '-input', '-target', '-auto-approve'],
  output: ['-raw', '-json'],
  validate: [],
};
const TERRAFORM_VALUE_FLAGS = new Set(['-chdir', '-backend-config', '-var', '-var-file', '-out', '-target']);

// gcloud commands the guide may use, each a page of https://cloud.google.com/sdk/gcloud/reference/
// (the words joined by /, e.g. reference/storage/buckets/create). A group alone (gcloud run) is no command.
const GCLOUD = [
  'config set',
  'services enable',
  'storage buckets create',
  'storage buckets update',
  'storage rm',
  'builds submit',
  'builds triggers create github',
  'functions call',
  'scheduler jobs describe',
  'scheduler jobs pause',
  'scheduler jobs resume',
  'run services proxy',
  'run services update-traffic',
  'run revisions list',
  'sql backups list',
  'sql backups restore',
  'sql backups delete',
  'sql instances clone',
  'auth application-default login',
  'auth configure-docker',
  'logging read',
  'monitoring channels list',
  'alpha monitoring policies create',
  'artifacts repositories create',
  'artifacts repositories add-iam-policy-binding',
  'artifacts repositories delete',
  'projects describe',
  'resource-manager org-policies describe',
];

// Other programs a block may run, each with the subcommands allowed (empty: any).
// curl: the dashboard's JSON API through the proxy (docs/deploy.md §9), as a script reaches it.
const OTHERS: Record<string, string[]> = { git: ['clone', 'checkout', 'rev-parse', 'push'], npm: ['ci'], docker: ['build', 'push'], curl: [] };

/** What is wrong with a `tickrun …` command line for the real CLI's parser; empty when nothing. */
function tickrunProblems(program: Command, words: string[]): string[] {
  const [name, ...rest] = words;
  const cmd = program.commands.find((c) => c.name() === name || c.aliases().includes(name));
  if (!cmd) return [`tickrun has no command ${name}`];
  const problems: string[] = [];
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i];
    if (!w.startsWith('-')) {
      positional.push(w);
      continue;
    }
    const flag = w.split('=')[0];
    const opt = cmd.options.find((o) => o.long === flag || o.short === flag);
    if (!opt && flag !== '--help') problems.push(`tickrun ${name} has no option ${flag}`);
    else if (opt && (opt.required || opt.optional) && !w.includes('=')) i++;
  }
  const args = cmd.registeredArguments;
  const min = args.filter((a) => a.required).length;
  const max = args.some((a) => a.variadic) ? Infinity : args.length;
  if (positional.length < min || positional.length > max) problems.push(`tickrun ${name} takes ${min}..${max} arguments, given ${positional.length}`);
  return problems;
}

function terraformProblems(words: string[]): string[] {
  let i = 0;
  while (words[i]?.startsWith('-chdir')) i += words[i].includes('=') ? 1 : 2;
  const sub = words[i];
  if (!(sub in TERRAFORM)) return [`terraform ${sub} is not a subcommand the guide may use`];
  const problems: string[] = [];
  for (let j = i + 1; j < words.length; j++) {
    const w = words[j];
    if (!w.startsWith('-')) continue;
    const flag = w.split('=')[0];
    if (!TERRAFORM[sub].includes(flag)) problems.push(`terraform ${sub} has no flag ${flag} in the list`);
    else if (TERRAFORM_VALUE_FLAGS.has(flag) && !w.includes('=')) j++;
  }
  return problems;
}

function gcloudProblems(words: string[]): string[] {
  const path = words.slice(0, words.findIndex((w) => w.startsWith('-')) === -1 ? words.length : words.findIndex((w) => w.startsWith('-')));
  const known = GCLOUD.some((c) => c.split(' ').every((part, i) => path[i] === part));
  return known ? [] : [`gcloud ${path.join(' ')} starts with no command in the list`];
}

describe('docs/deploy.md', () => {
  it('has shell blocks, each of which bash parses', () => {
    expect(SHELL.length).toBeGreaterThan(0);
    for (const b of SHELL) {
      const r = spawnSync('bash', ['-n'], { input: b.text, encoding: 'utf8' });
      expect([b.line, r.status, r.stderr]).toEqual([b.line, 0, '']);
    }
  });

  it("gives tickrun only commands, options and arguments its parser accepts", () => {
    const program = buildProgram({});
    const lines = COMMANDS.filter(({ words }) => words[0] === 'tickrun' || (words[0] === 'npx' && words[1] === 'tickrun'));
    expect(lines.length).toBeGreaterThan(2);
    for (const { line, words } of lines) expect([line, words.join(' '), tickrunProblems(program, words.slice(words[0] === 'npx' ? 2 : 1))]).toEqual([line, words.join(' '), []]);
  });

  it('gives terraform only known subcommands and flags', () => {
    const lines = [...COMMANDS, ...INLINE].filter(({ words }) => words[0] === 'terraform');
    expect(lines.length).toBeGreaterThan(2);
    for (const { line, words } of lines) expect([line, words.join(' '), terraformProblems(words.slice(1))]).toEqual([line, words.join(' '), []]);
  });

  it('gives gcloud only known commands', () => {
    const lines = [...COMMANDS, ...INLINE].filter(({ words }) => words[0] === 'gcloud');
    expect(lines.length).toBeGreaterThan(5);
    for (const { line, words } of lines) expect([line, words.join(' '), gcloudProblems(words.slice(1))]).toEqual([line, words.join(' '), []]);
  });

  it('runs no other program but git, npm ci, docker build/push and curl', () => {
    for (const { line, words } of COMMANDS) {
      if (['tickrun', 'terraform', 'gcloud'].includes(words[0]) || (words[0] === 'npx' && words[1] === 'tickrun')) continue;
      const allowed = words[0] in OTHERS && (OTHERS[words[0]].length === 0 || OTHERS[words[0]].includes(words[1]));
      expect([line, words.join(' '), allowed]).toEqual([line, words.join(' '), true]);
    }
  });

  it('starts each Cloud Build file with substitutions it declares, as the account meant to run it', () => {
    const submits = COMMANDS.filter(({ words }) => words[0] === 'gcloud' && words[1] === 'builds' && words[2] === 'submit');
    const configs = new Set<string>();
    for (const { line, words } of submits) {
      // --flag=value or --flag value, as gcloud takes either.
      const flag = (name: string) => {
        const i = words.findIndex((w) => w === `--${name}` || w.startsWith(`--${name}=`));
        return i === -1 ? undefined : words[i].includes('=') ? words[i].slice(name.length + 3) : words[i + 1];
      };
      const config = flag('config')!;
      configs.add(config);
      const declared = readBuild(config).substitutions ?? {};
      // Cloud Build refuses a user substitution the file does not use; COMMIT_SHA is a built-in.
      const given = (flag('substitutions') ?? '').split(',').filter(Boolean).map((kv) => kv.split('=')[0]);
      for (const key of given) expect([line, key, key in declared || key === 'COMMIT_SHA']).toEqual([line, key, true]);
      const account = { 'cloudbuild.yaml': 'tickrun-ci@', 'cloudbuild.deploy.yaml': 'tickrun-deploy@' }[config];
      expect([line, flag('service-account')]).toEqual([line, expect.stringContaining(account!)]);
    }
    expect([...configs].sort()).toEqual(['cloudbuild.deploy.yaml', 'cloudbuild.yaml']);
  });

  it('checks with checks that refuse what is wrong', () => {
    const program = buildProgram({});
    expect(tickrunProblems(program, ['trigger'])).toEqual(['tickrun trigger takes 1..1 arguments, given 0']);
    expect(tickrunProblems(program, ['status', '--bogus'])).toEqual(['tickrun status has no option --bogus']);
    expect(tickrunProblems(program, ['deploy'])).toEqual(['tickrun has no command deploy']);
    expect(terraformProblems(['-chdir=terraform', 'aply'])).toEqual(['terraform aply is not a subcommand the guide may use']);
    expect(terraformProblems(['apply', '-var', 'a=b', '-auto-aprove'])).toEqual(['terraform apply has no flag -auto-aprove in the list']);
    expect(gcloudProblems(['run', 'servces', 'proxy', 'x'])).toEqual(['gcloud run servces proxy x starts with no command in the list']);
    expect(gcloudProblems(['run', '--region=x'])).toEqual(['gcloud run starts with no command in the list']);
  });

  it('has HCL and JSON blocks that parse', async () => {
    for (const b of blocks(/^hcl$/)) await expect(parseHcl(`deploy.md:${b.line}`, b.text)).resolves.toBeDefined();
    expect(blocks(/^json$/).length).toBeGreaterThan(0);
    for (const b of blocks(/^json$/)) expect(() => JSON.parse(b.text)).not.toThrow();
  });

  it('covers a first deploy to a scheduled DAG, and living with it', () => {
    const headings = [...DOC.matchAll(/^#+ (.+)$/gm)].map((m) => m[1]);
    for (const wanted of [/bootstrap/i, /job image/i, /adding a job/i, /org(anization)? polic/i, /upgrad/i, /tearing .*down/i, /alert/i, /who may do what/i]) {
      expect([String(wanted), headings.some((h) => wanted.test(h))]).toEqual([String(wanted), true]);
    }
    // The full grant table and the migration rule live beside what they describe.
    expect(DOC).toContain('](../terraform/IAM.md)');
    expect(DOC).toContain('](../migrations/README.md)');
  });
});
