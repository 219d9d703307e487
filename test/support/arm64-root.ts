/**
 * The arm64 layer under user-mode emulation: an arm64 Debian root (made and cached by
 * arm64-root.sh), entered with chroot in a private mount namespace where the layer, the
 * function, /tmp, /proc and /dev are bind-mounted in. The kernel hands every arm64 executable
 * to qemu-aarch64-static (binfmt_misc), so each exec in the chain (wrapper.sh's bash, the
 * helper, node, python3) is emulated, and the PID stays the one the test started.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './paths';
import { run, type RunResult } from './run';

const SCRIPT = join(ROOT, 'test', 'support', 'arm64-root.sh');
/** What `make build` leaves for arm64: the core layer and the Node layer. */
export const ARM64_OPT = join(ROOT, 'build', 'arm64', 'opt');
export const ARM64_NODE_OPT = join(ROOT, 'build', 'arm64', 'node-opt');

export function requireArm64Built(): void {
  const files = ['wrapper.sh', 'init.js', 'bin/snaploader-helper', 'lib/libsnaploader.so', 'lib/snaploader-native.node']
    .map((f) => join(ARM64_OPT, 'snaploader', f))
    .concat(join(ARM64_NODE_OPT, 'snaploader', 'node', 'bin', 'node'));
  for (const f of files) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`node build.mjs --arch arm64\` or \`make build\` first (make test does)`);
  }
}

/** The root's path, made first if this machine has none for the current package list. */
export function ensureArm64Root(): string {
  try {
    const out = execFileSync(SCRIPT, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600000 });
    return out.trim().split('\n').pop()!;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${SCRIPT} failed: ${e.stderr || e.message}`);
  }
}

/** /opt as Lambda lays it out with both arm64 layers attached, in a fresh directory. */
export function layArm64Opt(dir: string): string {
  mkdirSync(dir, { recursive: true });
  cpSync(ARM64_OPT, dir, { recursive: true, verbatimSymlinks: true });
  cpSync(ARM64_NODE_OPT, dir, { recursive: true, verbatimSymlinks: true });
  return dir;
}

export interface RootMounts {
  /** Mounted on /opt (the layers). */
  opt: string;
  /** Mounted on /var/task (the function). */
  task: string;
  /** Mounted on /tmp, so the tree the init program lays out can be looked at afterwards. */
  tmp: string;
}

// Runs as root in a new mount namespace: nothing mounted here is seen outside, and the cached
// root itself is mounted read-only, so no run can change it.
const ENTER = `set -eu
root=$1 opt=$2 task=$3 tmp=$4
shift 4
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount --bind "$opt" "$root/opt"
mount --bind "$task" "$root/var/task"
mount --bind "$tmp" "$root/tmp"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
exec /usr/sbin/chroot "$root" "$@"`;

/** Runs `argv` (paths inside the root) in the root, with only `env`, like run() does on the host. */
export function runInRoot(root: string, mounts: RootMounts, argv: string[], env: Record<string, string>, timeoutMs = 240000): Promise<RunResult> {
  return run(['-m', '--propagation', 'private', '/bin/sh', '-c', ENTER, 'enter', root, mounts.opt, mounts.task, mounts.tmp, ...argv], env,
    { command: '/usr/bin/unshare', timeoutMs });
}
