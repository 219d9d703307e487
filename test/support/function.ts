import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PYTHON } from './native';
import { OPT, ROOT } from './paths';
import { baseEnv, run, type RunResult } from './run';

export const BOOTSTRAP = join(ROOT, 'test', 'fixtures', 'runtime', 'lambda_bootstrap.py');
export const TASK_ROOT = join(ROOT, 'test', 'fixtures', 'runtime');

/** A scratch directory per test, removed by cleanup(). */
export function scratch(prefix: string): { dir: string; target: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), `snaploader-${prefix}-`));
  mkdirSync(dir, { recursive: true });
  return { dir, target: join(dir, 'tree'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The argv Lambda's Python runtime would give the wrapper, with our stand-in bootstrap. */
export function pythonArgv(handler: string): string[] {
  return [PYTHON, BOOTSTRAP, OPT, handler];
}

/** Runs `handler` as Lambda's Python runtime would, through wrapper.sh. */
export function invokePython(handler: string, env: Record<string, string>, taskRoot = TASK_ROOT): Promise<RunResult> {
  return run(pythonArgv(handler), baseEnv({ LAMBDA_TASK_ROOT: taskRoot, ...env }));
}

/** The handler's return value, from the RESULT line the bootstrap prints. */
export function result(r: RunResult): Record<string, unknown> {
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`no RESULT line; exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return JSON.parse(line.slice('RESULT '.length));
}
