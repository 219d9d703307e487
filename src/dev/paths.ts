/**
 * Where the project's files are, for its development tooling (tests, benchmarks): the
 * checkout, the x86_64 layer as `make build` leaves it, and the C toolchain. Never part of the layer.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository: the nearest directory up from here with snaploader's package.json (also when bundled into build/). */
function findRoot(from: string): string {
  for (let d = from; d !== dirname(d); d = dirname(d)) {
    const pkg = join(d, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'snaploader') return d;
  }
  throw new Error(`no snaploader checkout above ${from}`);
}

export const ROOT = findRoot(__dirname);
/** What the x86_64 core layer puts in /opt, as `make build` leaves it. */
export const OPT = join(ROOT, 'build', 'x86_64', 'opt');
/** What the x86_64 Node layer puts in /opt: the init program's Node.js for runtimes without one. */
export const NODE_OPT = join(ROOT, 'build', 'x86_64', 'node-opt');
export const WRAPPER = join(OPT, 'snaploader', 'wrapper.sh');
export const HELPER = join(OPT, 'snaploader', 'bin', 'snaploader-helper');
export const PRELOAD = join(OPT, 'snaploader', 'lib', 'libsnaploader.so');
export const INIT_JS = join(OPT, 'snaploader', 'init.js');
export const ZIG = join(ROOT, 'node_modules', '@ryoppippi', 'zig-linux-x64', 'zig');

export function requireBuilt(): void {
  for (const f of [WRAPPER, HELPER, PRELOAD, INIT_JS, join(NODE_OPT, 'snaploader', 'node', 'bin', 'node')]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`make build\` first (make test does)`);
  }
}
