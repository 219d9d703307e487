import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
/** What the x86_64 core layer puts in /opt, as `make build` leaves it. */
export const OPT = join(ROOT, 'build', 'x86_64', 'opt');
export const WRAPPER = join(OPT, 'snaploader', 'wrapper.sh');
export const HELPER = join(OPT, 'snaploader', 'bin', 'snaploader-helper');
export const PRELOAD = join(OPT, 'snaploader', 'lib', 'libsnaploader.so');
export const INIT_JS = join(OPT, 'snaploader', 'init.js');
export const ZIG = join(ROOT, 'node_modules', '@ryoppippi', 'zig-linux-x64', 'zig');

export function requireBuilt(): void {
  for (const f of [WRAPPER, HELPER, PRELOAD, INIT_JS]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`make build\` first (make test does)`);
  }
}
