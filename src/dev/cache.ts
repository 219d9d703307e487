import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * What the tests fetch or build (the emulator, wheels, runtime clients) lives outside the
 * clone, keyed by version, so a fresh clone (CI) reuses it: $SNAPLOADER_CACHE, by default
 * ~/.cache/snaploader.
 */
export const CACHE = process.env.SNAPLOADER_CACHE || join(homedir(), '.cache', 'snaploader');

const COMPLETE = '.complete';

/**
 * The directory `CACHE/<key>`, made by `build(dir)` the first time. `build` writes into a
 * private directory that is renamed into place only when it returns, so an interrupted build
 * or a concurrent test worker never leaves a half-made entry behind.
 */
export function cached(key: string, build: (dir: string) => void): string {
  const dir = join(CACHE, key);
  if (existsSync(join(dir, COMPLETE))) return dir;
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    build(tmp);
    writeFileSync(join(tmp, COMPLETE), '');
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (existsSync(join(dir, COMPLETE))) return dir; // another worker finished first
    throw err;
  }
  return dir;
}
