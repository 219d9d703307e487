/**
 * The arm64 layer, run: its helper, preload library, native extractor and the Node layer's
 * node, in an arm64 Debian root under qemu-user (test/support/arm64-root.*), load an archive
 * from a local S3 server on the host's loopback, and an arm64 CPython imports the native
 * module that only the archive holds. docs/testing.md says what this proves and what
 * emulation cannot show.
 */
import { closeSync, copyFileSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { zipDir } from './support/archive';
import { ensureArm64Root, layArm64Opt, requireArm64Built, runInRoot, type RootMounts } from './support/arm64-root';
import { scratch } from './support/function';
import { ROOT } from './support/paths';
import { baseEnv, type RunResult } from './support/run';
import { LocalS3 } from './support/s3';
import { zigCc } from './support/zig';

const BUCKET = 'functions';
const TARGET = 'aarch64-linux-gnu.2.17';
const NATIVE_SRC = join(ROOT, 'test', 'fixtures', 'native');
const MiB = 1024 * 1024;
// Every seal the helper adds: F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE.
const ALL_SEALS = 1 | 2 | 4 | 8;
const EM_AARCH64 = 0xb7;

let root: string;
let s3: LocalS3;
let work: ReturnType<typeof scratch>;
let opt: string;
let task: string;
let blobSha256: string;

/**
 * The archive: the same C sources as the x86_64 end-to-end test, compiled for arm64 against
 * the root's Python headers. fancy/_native.so (1.5 MiB, to memory) needs greet_helper.so
 * (beside it, RUNPATH $ORIGIN) and libfar.so (2 MiB, to memory; vendor/lib/, found through
 * LD_LIBRARY_PATH only); lib/libabs.so is opened by its original path through the preload library;
 * data/blob.bin (12 MiB of text, deflated) is over the 8 MiB a single job inflates, so the
 * extractor's streaming inflater writes it into its memfd as it downloads.
 */
function buildArm64Package(pkg: string, build: string): Buffer {
  const inc = join(build, 'inc');
  mkdirSync(inc, { recursive: true });
  // Debian's pyconfig.h includes <aarch64-linux-gnu/python3.11/pyconfig.h>.
  symlinkSync(join(root, 'usr', 'include', 'aarch64-linux-gnu'), join(inc, 'aarch64-linux-gnu'));
  const shared = ['-shared', '-fPIC'];
  const greet = zigCc(join(pkg, 'fancy', 'greet_helper.so'), [...shared, '-Wl,-soname,greet_helper.so', join(NATIVE_SRC, 'greet.c')], TARGET);
  zigCc(join(pkg, 'vendor', 'lib', 'libfar.so'), [...shared, `-DPAD_BYTES=${2 * MiB}`, '-Wl,-soname,libfar.so', join(NATIVE_SRC, 'far.c')], TARGET);
  zigCc(join(pkg, 'lib', 'libabs.so'), [...shared, '-Wl,-soname,libabs.so', join(NATIVE_SRC, 'abs.c')], TARGET);
  zigCc(join(pkg, 'fancy', '_native.so'), [...shared, `-I${join(root, 'usr', 'include', 'python3.11')}`, `-I${inc}`,
    `-DPAD_BYTES=${1.5 * MiB}`, join(NATIVE_SRC, 'native.c'), greet, `-L${join(pkg, 'vendor', 'lib')}`, '-lfar', '-Wl,-rpath,$ORIGIN'], TARGET);
  writeFileSync(join(pkg, 'fancy', '__init__.py'), '"""A package that exists only in the archive."""\n');
  const lines: string[] = [];
  for (let i = 0, size = 0; size < 12 * MiB; i++) {
    const line = `line ${i}: ${(Math.imul(i, 2654435761) >>> 0).toString(16)}\n`;
    lines.push(line);
    size += line.length;
  }
  const blob = Buffer.from(lines.join(''));
  mkdirSync(join(pkg, 'data'));
  writeFileSync(join(pkg, 'data', 'blob.bin'), blob);
  return blob;
}

beforeAll(async () => {
  requireArm64Built();
  root = ensureArm64Root();
  work = scratch('arm64');
  opt = layArm64Opt(join(work.dir, 'opt'));
  task = join(work.dir, 'task');
  mkdirSync(task);
  copyFileSync(join(ROOT, 'test', 'fixtures', 'arm64', 'run_handler.py'), join(task, 'run_handler.py'));
  copyFileSync(join(ROOT, 'test', 'fixtures', 'arm64', 'handler.py'), join(task, 'handler.py'));
  const pkg = join(work.dir, 'pkg');
  blobSha256 = createHash('sha256').update(buildArm64Package(pkg, join(work.dir, 'build'))).digest('hex');
  s3 = await new LocalS3().start();
  await s3.createBucket(BUCKET);
  await s3.put(BUCKET, 'native.zip', zipDir(pkg, join(work.dir, 'native.zip')));
}, 600000);

afterAll(async () => {
  await s3?.stop();
  work?.cleanup();
});

/** The ELF machine of every ELF file under `dir` (symlinks not followed), by path. */
function elfMachines(dir: string): Record<string, number> {
  const found: Record<string, number> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const head = Buffer.alloc(20);
    const fd = openSync(path, 'r');
    const n = readSync(fd, head, 0, 20, 0);
    closeSync(fd);
    if (n === 20 && head.subarray(0, 4).toString('latin1') === '\x7fELF') found[path.slice(dir.length + 1)] = head.readUInt16LE(18);
  }
  return found;
}

let runs = 0;

/** Lambda's Python runtime start, through the layer's wrapper.sh, inside the arm64 root. */
async function invoke(key: string, extra: Record<string, string> = {}): Promise<{ r: RunResult; mounts: RootMounts }> {
  const tmp = join(work.dir, `tmp-${++runs}`);
  mkdirSync(tmp, { mode: 0o1777 });
  const mounts = { opt, task, tmp };
  const env = baseEnv({
    ...s3.env(),
    LAMBDA_TASK_ROOT: '/var/task',
    SNAPLOADER_BUCKET: BUCKET,
    SNAPLOADER_KEY: key,
    // Emulation runs node several times slower than an arm64 machine; 9 s is the on-demand default.
    SNAPLOADER_TIMEOUT: '120',
    ...extra,
  });
  const argv = ['/opt/snaploader/wrapper.sh', '/usr/bin/python3', '/var/task/run_handler.py', '/opt', 'handler.handler'];
  return { r: await runInRoot(root, mounts, argv, env), mounts };
}

// One emulated start is ~15 s here (node and CPython under qemu-user); room for a loaded machine.
const RUN_TIMEOUT_MS = 300000;
const stderrLines = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');

/** The handler's return value, from the RESULT line run_handler.py prints. */
function result(r: RunResult): Record<string, unknown> {
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`no RESULT line; exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return JSON.parse(line.slice('RESULT '.length));
}

describe('the arm64 layer under emulation, in an arm64 Debian root', () => {
  test('every executable and library in the root and the layers is arm64: nothing in a run is native', () => {
    // An x86_64 file would run natively in the root (no qemu), and prove nothing about arm64.
    const layers = elfMachines(opt);
    expect(Object.keys(layers).sort()).toEqual(['snaploader/bin/snaploader-helper', 'snaploader/lib/libsnaploader.so',
      'snaploader/lib/snaploader-native.node', 'snaploader/node/bin/node']);
    const rootFiles = elfMachines(join(root, 'usr'));
    expect(Object.keys(rootFiles)).toEqual(expect.arrayContaining(['bin/bash', 'bin/python3.11', 'lib/aarch64-linux-gnu/libc.so.6']));
    for (const [path, machine] of Object.entries({ ...layers, ...rootFiles })) expect([path, machine]).toEqual([path, EM_AARCH64]);
  });

  test('an arm64 CPython imports a native module from the S3 archive the arm64 init program laid out', async () => {
    const { r, mounts } = await invoke('native.zip');
    const out = result(r);
    expect(r.code).toBe(0);
    expect(out.machine).toBe('aarch64');
    expect(out.answer).toBe(42); // greet_helper via $ORIGIN (40) + libfar via LD_LIBRARY_PATH (2)
    expect(out.abs).toBe(7); // dlopen of /var/task/lib/libabs.so, redirected by the arm64 preload library
    expect(out.pid).toBe(r.pid); // wrapper, helper and runtime: one PID, through every emulated exec
    expect(out.fancy).toBe('/tmp/snaploader/fancy/__init__.py');
    expect(out.native).toBe('/tmp/snaploader/fancy/_native.so');
    expect(out.blob_sha256).toBe(blobSha256); // streamed, inflated on arm64, read back through open()
    expect(String(out.ld_library_path).split(':').slice(0, 2)).toEqual(['/tmp/snaploader/lib', '/tmp/snaploader/vendor/lib']);
    // The three large files are memfds the arm64 helper created, sealed and passed on.
    expect(out.memfds).toEqual([
      { name: '/memfd:_native.so (deleted)', seals: ALL_SEALS },
      { name: '/memfd:blob.bin (deleted)', seals: ALL_SEALS },
      { name: '/memfd:libfar.so (deleted)', seals: ALL_SEALS },
    ]);
    expect(readlinkSync(join(mounts.tmp, 'snaploader', 'fancy', '_native.so'))).toMatch(new RegExp(`^/proc/${r.pid}/fd/\\d+$`));
    const summary = stderrLines(r.stderr);
    expect(summary).toEqual([expect.stringMatching(
      /^snaploader: loaded 6 files \(15\.\d MiB\) from s3:\/\/functions\/native\.zip in \d+\.\d\d s: 3 in memory \(15\.5 MiB\), 3 in \/tmp\/snaploader \(\d+\.\d KiB\)$/)]);
  }, RUN_TIMEOUT_MS);

  test('the init program runs on the Node layer\'s arm64 node, the only node in the root', async () => {
    const { r } = await invoke('native.zip', { SNAPLOADER_DEBUG: '1' });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('[snaploader:wrapper] layer /opt/snaploader; node /opt/snaploader/node/bin/node;');
    expect(r.stderr).toMatch(/snaploader: debug: \+\d+ms plan: 3 files/);
    expect(result(r).answer).toBe(42);
  }, RUN_TIMEOUT_MS);

  test('a failure stops the function before the runtime starts, with one line from the arm64 helper', async () => {
    const { r } = await invoke('missing.zip');
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain('RESULT');
    expect(stderrLines(r.stderr)).toEqual([expect.stringMatching(/^snaploader: SOURCE_NOT_FOUND: s3:\/\/functions\/missing\.zip does not exist \(404 NoSuchKey\)/)]);
  }, RUN_TIMEOUT_MS);
});
