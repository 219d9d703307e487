import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths';

/** The test functions' code: what the sandbox mounts at /var/task (support/lambda.ts). */
export const TASK_ROOT = join(ROOT, 'test', 'fixtures', 'runtime');

export interface Scratch {
  dir: string;
  target: string;
  cleanup(): void;
}

/** A scratch directory per test, removed by cleanup(). */
export function scratch(prefix: string): Scratch {
  const dir = mkdtempSync(join(tmpdir(), `snaploader-${prefix}-`));
  mkdirSync(dir, { recursive: true });
  return { dir, target: join(dir, 'tree'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
