import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ZIG } from './paths';

/** Compiles test and benchmark code with the project's C toolchain (zig cc) for this machine's glibc. */
export function zigCc(out: string, args: string[], target = 'x86_64-linux-gnu'): string {
  mkdirSync(dirname(out), { recursive: true });
  try {
    execFileSync(ZIG, ['cc', '-target', target, '-Wall', '-Wextra', '-Werror', '-O1', '-o', out, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as { stderr?: Buffer };
    throw new Error(`zig cc -o ${out} failed:\n${e.stderr?.toString() ?? String(err)}`);
  }
  return out;
}
