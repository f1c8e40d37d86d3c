import { execFile } from 'node:child_process';
import path from 'node:path';

/** What one run of the built CLI printed and returned. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const CLI = path.resolve(__dirname, '..', '..', 'bin', 'tickrun.js');

/** Runs the built `tickrun` (dist/cli.js, made by `npm run build`) as a user would, with its own environment. */
export function runCli(args: string[], env: Record<string, string>, cwd?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
