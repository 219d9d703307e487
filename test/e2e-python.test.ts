/**
 * The product, end to end: a real CPython started through wrapper.sh, the real helper and
 * init program, a real S3-compatible server, and native code built for the purpose.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipDir, writeTree } from './support/archive';
import { invokePython, result, scratch } from './support/function';
import { buildNativePackage, PYTHON } from './support/native';
import { requireBuilt } from './support/paths';
import { baseEnv, run } from './support/run';
import { LocalS3 } from './support/s3';

const BUCKET = 'functions';
let s3: LocalS3;
let work: ReturnType<typeof scratch>;

beforeAll(async () => {
  requireBuilt();
  work = scratch('e2e');
  s3 = await new LocalS3().start();
  await s3.createBucket(BUCKET);
  const pkg = join(work.dir, 'pkg');
  buildNativePackage(pkg, join(work.dir, 'build'));
  await s3.put(BUCKET, 'native.zip', zipDir(pkg, join(work.dir, 'native.zip')));
  await s3.put(BUCKET, 'not-a-zip.zip', Buffer.from('this is a text file, not an archive\n'));
}, 180000);

afterAll(async () => {
  await s3?.stop();
  work?.cleanup();
});

function envFor(key: string, extra: Record<string, string> = {}): Record<string, string> {
  const t = scratch('target');
  return { ...s3.env(), SNAPLOADER_BUCKET: BUCKET, SNAPLOADER_KEY: key, SNAPLOADER_TARGET_DIR: t.target, ...extra };
}

const stderrLines = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');

describe('a Python handler whose native library lives only in the S3 archive', () => {
  test('imports it with no change to the handler, keeping the PID, with large libraries in memfds', async () => {
    const env = envFor('native.zip');
    const r = await invokePython('handler.handler', env);
    const out = result(r);
    expect(r.code).toBe(0);
    expect(out.answer).toBe(42); // greet_helper via $ORIGIN (40) + libfar via LD_LIBRARY_PATH (2)
    expect(out.abs).toBe(7); // dlopen of /var/task/lib/libabs.so, redirected by the preload library
    expect(out.pid).toBe(r.pid);
    expect(String(out.fancy)).toBe(join(env.SNAPLOADER_TARGET_DIR, 'fancy', '__init__.py'));
    expect(out.memfd_maps).toEqual(['/memfd:_native.so (deleted)', '/memfd:libfar.so (deleted)']);
    expect(String(out.ld_library_path).split(':').slice(0, 2)).toEqual([join(env.SNAPLOADER_TARGET_DIR, 'lib'), join(env.SNAPLOADER_TARGET_DIR, 'vendor', 'lib')]);
    const summary = stderrLines(r.stderr);
    expect(summary).toHaveLength(1);
    expect(summary[0]).toMatch(/^snaploader: loaded 5 files \(3\.\d MiB\) from s3:\/\/functions\/native\.zip in \d+\.\d\d s: 2 in memory \(3\.5 MiB\), 3 in \S+ \(\d+\.\d KiB\)$/);
  });

  test('memfd-backed files appear in the tree as links to the runtime\'s own fds', async () => {
    const env = envFor('native.zip');
    const r = await invokePython('handler.handler', env);
    expect(r.code).toBe(0);
    expect(readlinkSync(join(env.SNAPLOADER_TARGET_DIR, 'fancy', '_native.so'))).toMatch(new RegExp(`^/proc/${r.pid}/fd/\\d+$`));
  });

  test('SNAPLOADER_SOURCE=s3://bucket/key works like SNAPLOADER_BUCKET + SNAPLOADER_KEY', async () => {
    const { SNAPLOADER_BUCKET: _b, SNAPLOADER_KEY: _k, ...env } = envFor('native.zip');
    const r = await invokePython('handler.handler', { ...env, SNAPLOADER_SOURCE: `s3://${BUCKET}/native.zip` });
    expect(result(r).answer).toBe(42);
  });

  test('SNAPLOADER_DEBUG shows the wrapper, helper and init steps; without it only the summary', async () => {
    const r = await invokePython('handler.handler', envFor('native.zip', { SNAPLOADER_DEBUG: '1' }));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('[snaploader:wrapper]');
    expect(r.stderr).toMatch(/snaploader: debug: \+\d+ms plan: 2 files/);
  });

  test('no credential ever reaches the logs, even with SNAPLOADER_DEBUG', async () => {
    const secrets = { AWS_ACCESS_KEY_ID: 'AKIASECRETSHOULDNOTLOG', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY', AWS_SESSION_TOKEN: 'FwoGZXIvYXdzSESSIONTOKEN' };
    for (const extra of [{}, { SNAPLOADER_DEBUG: '1' }] as Record<string, string>[]) {
      const r = await invokePython('handler.handler', envFor('native.zip', { ...secrets, ...extra }));
      expect(r.code).toBe(1); // s3rver refuses the key: the failure path logs too
      for (const secret of Object.values(secrets)) expect(r.stderr + r.stdout).not.toContain(secret);
    }
  });
});

describe('no archive configured', () => {
  test('with SNAPLOADER_SHM=off the wrapper execs the runtime unchanged: no LD_PRELOAD, no init program', async () => {
    const r = await run([PYTHON, '-c', 'import os; print("LD_PRELOAD=" + os.environ.get("LD_PRELOAD", "unset"), os.getpid())'], baseEnv({ SNAPLOADER_SHM: 'off' }));
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`LD_PRELOAD=unset ${r.pid}`);
    expect(r.stderr).toBe('');
  });
});

describe('bad input stops the function before the runtime starts, with one line naming the cause', () => {
  const cases: [string, () => Record<string, string>, RegExp][] = [
    ['a bucket without a key', () => ({ ...s3.env(), SNAPLOADER_BUCKET: BUCKET }), /^snaploader: CONFIG_INVALID: SNAPLOADER_BUCKET is set but SNAPLOADER_KEY is not: set both$/],
    ['a bucket that does not exist', () => envFor('native.zip', { SNAPLOADER_BUCKET: 'no-such-bucket' }), /^snaploader: SOURCE_NOT_FOUND: bucket no-such-bucket does not exist \(404 NoSuchBucket\)/],
    ['a key that does not exist', () => envFor('missing.zip'), /^snaploader: SOURCE_NOT_FOUND: s3:\/\/functions\/missing\.zip does not exist \(404 NoSuchKey\)/],
    ['credentials S3 refuses', () => envFor('native.zip', { AWS_ACCESS_KEY_ID: 'AKIAWRONGWRONGWRONG' }), /^snaploader: SOURCE_ACCESS_DENIED: access to s3:\/\/functions\/native\.zip was denied \(403 InvalidAccessKeyId\)/],
    ['an object that is not a zip', () => envFor('not-a-zip.zip'), /^snaploader: NOT_A_ZIP: not a zip archive: no end-of-central-directory record in the last 36 bytes$/],
    ['an unreachable endpoint', () => envFor('native.zip', { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' }), /^snaploader: SOURCE_UNREACHABLE: cannot reach S3 for s3:\/\/functions\/native\.zip \(ECONNREFUSED\)/],
    ['a malformed SNAPLOADER_SOURCE', () => ({ ...s3.env(), SNAPLOADER_SOURCE: 'functions/native.zip' }), /^snaploader: CONFIG_INVALID: SNAPLOADER_SOURCE="functions\/native\.zip" must look like s3:\/\/bucket\/path\/to\/archive\.zip$/],
  ];
  test.each(cases)('%s', async (_name, env, message) => {
    const r = await invokePython('handler.handler', env());
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain('RESULT');
    const lines = stderrLines(r.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });

  test('SNAPLOADER_ON_ERROR=continue starts the runtime without the archive, after a warning', async () => {
    const r = await invokePython('absent.handler', envFor('missing.zip', { SNAPLOADER_ON_ERROR: 'continue' }));
    expect(r.code).toBe(0);
    expect(result(r)).toEqual({ fancy: 'ImportError', map: null });
    expect(stderrLines(r.stderr)).toEqual([expect.stringMatching(/^snaploader: warning: SOURCE_NOT_FOUND: .*; starting the runtime without the archive \(SNAPLOADER_ON_ERROR=continue\)$/)]);
  });
});

describe('archive layouts', () => {
  test('a Lambda-layer layout (python/, site-packages, lib/, bin/) is importable and on PATH', async () => {
    const tree = join(work.dir, 'layered');
    writeTree(tree, {
      'python/toplevel.py': 'WHERE = "python/"\n',
      'python/lib/python3.11/site-packages/layered/__init__.py': 'WHERE = "site-packages"\n',
      'python/lib/python3.11/site-packages/extra.pth': 'import sys; sys.snaploader_pth_ran = True\n',
      'bin/hello-tool': { mode: 0o755, content: '#!/bin/sh\necho hello from the archive\n' },
    });
    await s3.put(BUCKET, 'layered.zip', zipDir(tree, join(work.dir, 'layered.zip')));
    const env = envFor('layered.zip');
    const r = await invokePython('layered_handler.handler', env);
    expect(result(r)).toEqual({ toplevel: 'python/', layered: 'site-packages', pth_ran: true, tool: 'hello from the archive' });
  });

  test('symlink entries (zip -y) become symlinks in the tree and resolve', async () => {
    const tree = join(work.dir, 'links');
    writeTree(tree, {
      'fancy/__init__.py': 'VERSION = "linked"\n',
      'data/real.txt': 'the real file\n',
      'data/alias.txt': { symlink: 'real.txt' },
    });
    await s3.put(BUCKET, 'links.zip', zipDir(tree, join(work.dir, 'links.zip')));
    const env = envFor('links.zip');
    const r = await invokePython('absent.handler', env);
    expect(r.code).toBe(0);
    expect(readlinkSync(join(env.SNAPLOADER_TARGET_DIR, 'data', 'alias.txt'))).toBe('real.txt');
  });

  test('SNAPLOADER_EXCLUDE leaves matching files out of the tree', async () => {
    const env = envFor('native.zip', { SNAPLOADER_EXCLUDE: 'lib/**' });
    const r = await invokePython('absent.handler', env);
    expect(r.code).toBe(0);
    expect(stderrLines(r.stderr)[0]).toMatch(/loaded 4 files .*, 1 filtered out$/);
  });
});

describe('integrity pin (SNAPLOADER_SHA256)', () => {
  let sha256: string;
  beforeAll(() => {
    sha256 = createHash('sha256').update(readFileSync(join(work.dir, 'native.zip'))).digest('hex');
  });

  test('the pinned archive loads, every byte of it hashed on the way', async () => {
    const r = await invokePython('handler.handler', envFor('native.zip', { SNAPLOADER_SHA256: sha256.toUpperCase() }));
    expect(result(r).answer).toBe(42);
  });

  test('any other object is refused before the runtime starts, and no tree is left', async () => {
    const env = envFor('native.zip', { SNAPLOADER_SHA256: 'a'.repeat(64) });
    const r = await invokePython('handler.handler', env);
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain('RESULT');
    expect(stderrLines(r.stderr)).toEqual([`snaploader: INTEGRITY_MISMATCH: s3://functions/native.zip has SHA-256 ${sha256}, but SNAPLOADER_SHA256 pins ${'a'.repeat(64)}: this is not the pinned archive; upload the right one or update the pin`]);
    expect(existsSync(env.SNAPLOADER_TARGET_DIR)).toBe(false);
  });
});

describe('SnapStart', () => {
  test('the after-restore hook finds memfd links that moved and repairs them, in one log line', async () => {
    const taskRoot = join(work.dir, 'snapstart-task');
    mkdirSync(taskRoot, { recursive: true });
    writeFileSync(join(taskRoot, 'snapshot_restore_py.py'), [
      '# Stand-in for the AWS runtime module: AWS itself cannot be reached from a test.',
      'after_restore = []',
      'def register_before_snapshot(f, *a, **k): pass',
      'def register_after_restore(f, *a, **k): after_restore.append((f, a, k))',
      '',
    ].join('\n'));
    writeFileSync(join(taskRoot, 'restore_handler.py'), [
      'import os, snapshot_restore_py',
      'def handler(event, context):',
      '    link = os.path.join(os.environ["SNAPLOADER_TARGET_DIR"], "vendor", "lib", "libfar.so")',
      '    good = os.readlink(link)',
      '    os.remove(link); os.symlink("/proc/999999/fd/3", link)  # what a changed PID would leave',
      '    for f, a, k in snapshot_restore_py.after_restore: f(*a, **k)',
      '    return {"hooks": len(snapshot_restore_py.after_restore), "repaired": os.readlink(link) == good}',
      '',
    ].join('\n'));
    const r = await invokePython('restore_handler.handler', envFor('native.zip'), taskRoot);
    expect(result(r)).toEqual({ hooks: 1, repaired: true });
    expect(stderrLines(r.stderr)[1]).toBe('snaploader: after restore: 5 mapped files resolve, 1 links repaired');
  });
});
