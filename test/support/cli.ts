/** Runs the `snaploader` command as a user would: the bundled tool, in a process of its own. */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './paths';
import { baseEnv, run, type RunResult } from './run';

export const CLI_JS = join(ROOT, 'build', 'cli.js');
let built = false;

/** Bundles src/cli/ into build/cli.js the way build.mjs does (once per test file). */
export function buildCli(): void {
  if (built) return;
  execFileSync(process.execPath, ['-e', 'import("./build.mjs").then((m) => m.buildCli())'], { cwd: ROOT, stdio: 'inherit' });
  built = true;
}

export function snaploader(args: string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  buildCli();
  return run([CLI_JS, ...args], baseEnv(opts.env), { command: process.execPath, cwd: opts.cwd, timeoutMs: opts.timeoutMs ?? 120000 });
}

/** The --json object a command printed on stdout. */
export function jsonOf(r: RunResult): any {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`not JSON on stdout (exit ${r.code}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}
