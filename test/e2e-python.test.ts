/**
 * The product, end to end, as Lambda runs it: the real runtime interface emulator and
 * awslambdaric start a real CPython through wrapper.sh inside the Lambda sandbox
 * (support/lambda.ts), against a real S3-compatible server, with native code built for the
 * purpose. Every assertion is on what the invoke returned or what the function logged.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeTree, zipDir } from './support/archive';
import { TASK_ROOT, type Scratch } from './support/function';
import { json, LambdaFunction, withFunction, type FunctionConfig } from './support/lambda';
import { NativeArchiveBucket } from './support/native';
import { requireBuilt } from './support/paths';
import type { LocalS3 } from './support/s3';

const BUCKET = 'functions';
const TREE = '/tmp/snaploader';
const WRAPPER_ENV = { AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh' };
let archive: NativeArchiveBucket;
let s3: LocalS3;
let work: Scratch;

beforeAll(async () => {
  requireBuilt();
  archive = await NativeArchiveBucket.start(BUCKET, 'e2e');
  ({ s3, work } = archive);
  await s3.put(BUCKET, 'not-a-zip.zip', Buffer.from('this is a text file, not an archive\n'));
}, 600000);

afterAll(async () => {
  await archive?.stop();
});

/** The function's configuration: the layer's wrapper, the local S3, and the archive `key`. */
function config(handler: string, key: string, env: Record<string, string> = {}): FunctionConfig {
  return { handler, task: TASK_ROOT, env: { ...WRAPPER_ENV, ...s3.env(), SNAPLOADER_BUCKET: BUCKET, SNAPLOADER_KEY: key, ...env } };
}

/** Starts the function, invokes it once with `event`, stops it. */
async function invokeOnce(cfg: FunctionConfig, event: unknown = {}) {
  return withFunction(cfg, async (fn) => ({ fn, r: await fn.invoke(event), pid: fn.bootstrapPid() }));
}

describe('a Python handler whose native library lives only in the S3 archive', () => {
  test('imports it with no change to the handler, as an unprivileged user, keeping the PID, with large libraries in memfds', async () => {
    const { fn, r, pid } = await invokeOnce(config('handler.handler', 'native.zip'));
    expect(r.status).toBe(200);
    const out = json(r);
    expect(out.answer).toBe(42); // greet_helper via $ORIGIN (40) + libfar via LD_LIBRARY_PATH (2)
    expect(out.abs).toBe(7); // ctypes.CDLL of /var/task/lib/libabs.so, redirected by the preload library
    expect(out.uid).toBe(993);
    expect(out.pid).toBe(pid); // the process the emulator started is the runtime
    expect(out.fancy).toBe(`${TREE}/fancy/__init__.py`);
    expect(out.memfd_maps).toEqual(['/memfd:_native.so (deleted)', '/memfd:libfar.so (deleted)']);
    expect(String(out.ld_library_path).split(':').slice(0, 2)).toEqual([`${TREE}/lib`, `${TREE}/vendor/lib`]);
    expect(fn.snaploaderLog()).toEqual([expect.stringMatching(/^snaploader: loaded 5 files \(3\.\d MiB\) from s3:\/\/functions\/native\.zip in \d+\.\d\d s: 2 in memory \(3\.5 MiB\), 3 in \/tmp\/snaploader \(\d+\.\d KiB\)$/)]);
  });

  test('loads for a user /etc/passwd does not name and no HOME, as a container image may run it', async () => {
    const { r } = await invokeOnce({ ...config('handler.handler', 'native.zip'), uid: 4242, noPasswdEntry: true });
    expect(json(r)).toMatchObject({ answer: 42, uid: 4242 });
  });

  test('stays loaded across invokes of the same environment: one init, one summary line', async () => {
    await withFunction(config('handler.handler', 'native.zip'), async (fn) => {
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(json(await fn.invoke()).answer);
      expect(answers).toEqual([42, 42, 42]);
      expect(fn.snaploaderLog()).toHaveLength(1);
    });
  });

  test("memfd-backed files appear in the tree as links to the runtime's own fds", async () => {
    const link = `${TREE}/fancy/_native.so`;
    const { r, pid } = await invokeOnce(config('probe.handler', 'native.zip'), { readlink: [link] });
    expect((json(r).readlink as Record<string, string>)[link]).toMatch(new RegExp(`^/proc/${pid}/fd/\\d+$`));
  });

  test('a memfd-backed file resolves to its tree path: os.path.realpath and Path.resolve()', async () => {
    const link = `${TREE}/fancy/_native.so`;
    const { r } = await invokeOnce(config('probe.handler', 'native.zip'), { realpath: [link] });
    expect(json(r).realpath).toEqual({ [link]: [link, link] });
  });

  test('SNAPLOADER_SOURCE=s3://bucket/key works like SNAPLOADER_BUCKET + SNAPLOADER_KEY', async () => {
    const cfg = config('handler.handler', 'native.zip');
    const { SNAPLOADER_BUCKET: _b, SNAPLOADER_KEY: _k, ...env } = cfg.env!;
    const { r } = await invokeOnce({ ...cfg, env: { ...env, SNAPLOADER_SOURCE: `s3://${BUCKET}/native.zip` } });
    expect(json(r).answer).toBe(42);
  });

  test('SNAPLOADER_DEBUG shows the wrapper, helper and init steps; without it only the summary', async () => {
    const { fn, r } = await invokeOnce(config('handler.handler', 'native.zip', { SNAPLOADER_DEBUG: '1' }));
    expect(r.status).toBe(200);
    expect(fn.log).toContain('[snaploader:wrapper]');
    expect(fn.log).toMatch(/snaploader: debug: \+\d+ms plan: 2 files/);
  });

  test('no credential ever reaches the logs, even with SNAPLOADER_DEBUG', async () => {
    const secrets = { AWS_ACCESS_KEY_ID: 'AKIASECRETSHOULDNOTLOG', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY', AWS_SESSION_TOKEN: 'FwoGZXIvYXdzSESSIONTOKEN' };
    for (const extra of [{}, { SNAPLOADER_DEBUG: '1' }] as Record<string, string>[]) {
      const { fn, r } = await invokeOnce(config('handler.handler', 'native.zip', { ...secrets, ...extra }));
      expect(r.status).toBe(502); // s3rver refuses the key: the failure path logs too
      expect(fn.snaploaderLog()).toContainEqual(expect.stringMatching(/^snaploader: SOURCE_ACCESS_DENIED: /));
      for (const secret of Object.values(secrets)) expect(fn.functionLog().join('\n')).not.toContain(secret);
    }
  });
});

describe('no archive configured', () => {
  test('the wrapper only preloads the library (for POSIX shared memory) and execs the runtime: no init program, no log line', async () => {
    const { fn, r, pid } = await invokeOnce({ handler: 'probe.handler', task: TASK_ROOT, env: WRAPPER_ENV }, { env: ['LD_PRELOAD', 'SNAPLOADER_MAP'], exists: [TREE] });
    const out = json(r);
    expect(out.env).toEqual({ LD_PRELOAD: '/opt/snaploader/lib/libsnaploader.so', SNAPLOADER_MAP: null });
    expect(out.exists).toEqual({ [TREE]: false });
    expect(out.pid).toBe(pid);
    expect(fn.snaploaderLog()).toEqual([]);
  });

  test('with SNAPLOADER_SHM=off the wrapper execs the runtime unchanged: no LD_PRELOAD', async () => {
    const { fn, r } = await invokeOnce({ handler: 'probe.handler', task: TASK_ROOT, env: { ...WRAPPER_ENV, SNAPLOADER_SHM: 'off' } }, { env: ['LD_PRELOAD'] });
    expect(json(r).env).toEqual({ LD_PRELOAD: null });
    expect(fn.snaploaderLog()).toEqual([]);
  });
});

describe('bad input fails the init before the runtime starts, with one line naming the cause', () => {
  const cases: [string, () => FunctionConfig, RegExp][] = [
    ['a bucket without a key', () => ({ handler: 'handler.handler', task: TASK_ROOT, env: { ...WRAPPER_ENV, ...s3.env(), SNAPLOADER_BUCKET: BUCKET } }), /^snaploader: CONFIG_INVALID: SNAPLOADER_BUCKET is set but SNAPLOADER_KEY is not: set both$/],
    ['a bucket that does not exist', () => config('handler.handler', 'native.zip', { SNAPLOADER_BUCKET: 'no-such-bucket' }), /^snaploader: SOURCE_NOT_FOUND: bucket no-such-bucket does not exist \(404 NoSuchBucket\)/],
    ['a key that does not exist', () => config('handler.handler', 'missing.zip'), /^snaploader: SOURCE_NOT_FOUND: s3:\/\/functions\/missing\.zip does not exist \(404 NoSuchKey\)/],
    ['credentials S3 refuses', () => config('handler.handler', 'native.zip', { AWS_ACCESS_KEY_ID: 'AKIAWRONGWRONGWRONG' }), /^snaploader: SOURCE_ACCESS_DENIED: access to s3:\/\/functions\/native\.zip was denied \(403 InvalidAccessKeyId\)/],
    ['an object that is not a zip', () => config('handler.handler', 'not-a-zip.zip'), /^snaploader: NOT_A_ZIP: not a zip archive: no end-of-central-directory record in the last 36 bytes$/],
    ['an unreachable endpoint', () => config('handler.handler', 'native.zip', { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' }), /^snaploader: SOURCE_UNREACHABLE: cannot reach S3 for s3:\/\/functions\/native\.zip \(ECONNREFUSED\)/],
    ['a malformed SNAPLOADER_SOURCE', () => ({ handler: 'handler.handler', task: TASK_ROOT, env: { ...WRAPPER_ENV, ...s3.env(), SNAPLOADER_SOURCE: 'functions/native.zip' } }), /^snaploader: CONFIG_INVALID: SNAPLOADER_SOURCE="functions\/native\.zip" must look like s3:\/\/bucket\/path\/to\/archive\.zip$/],
  ];
  test.each(cases)('%s', async (_name, cfg, message) => {
    const { fn, r } = await invokeOnce(cfg());
    // Lambda answers an init that exited with Runtime.ExitError; the emulator with 502.
    expect(r.status).toBe(502);
    expect(fn.log).toMatch(/Runtime exited with error: exit status 1/);
    // The emulator, like Lambda, runs the init again in the invoke: the same single line each time.
    const lines = fn.snaploaderLog();
    expect(lines.length).toBeGreaterThanOrEqual(1);
    for (const line of lines) expect(line).toMatch(message);
    expect(fn.functionLog().filter((l) => !l.startsWith('snaploader'))).toEqual([]);
  });

  test('SNAPLOADER_ON_ERROR=continue starts the runtime without the archive, after a warning', async () => {
    const { fn, r } = await invokeOnce(config('absent.handler', 'missing.zip', { SNAPLOADER_ON_ERROR: 'continue' }));
    expect(json(r)).toEqual({ fancy: 'ImportError', map: null });
    expect(fn.snaploaderLog()).toEqual([expect.stringMatching(/^snaploader: warning: SOURCE_NOT_FOUND: .*; starting the runtime without the archive \(SNAPLOADER_ON_ERROR=continue\)$/)]);
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
    const { r } = await invokeOnce(config('layered_handler.handler', 'layered.zip'));
    expect(json(r)).toEqual({ toplevel: 'python/', layered: 'site-packages', pth_ran: true, tool: 'hello from the archive' });
  });

  test('symlink entries (zip -y) become symlinks in the tree and resolve', async () => {
    const tree = join(work.dir, 'links');
    writeTree(tree, {
      'fancy/__init__.py': 'VERSION = "linked"\n',
      'data/real.txt': 'the real file\n',
      'data/alias.txt': { symlink: 'real.txt' },
    });
    await s3.put(BUCKET, 'links.zip', zipDir(tree, join(work.dir, 'links.zip')));
    const alias = `${TREE}/data/alias.txt`;
    const { r } = await invokeOnce(config('probe.handler', 'links.zip'), { readlink: [alias], exists: [alias] });
    expect(json(r)).toMatchObject({ readlink: { [alias]: 'real.txt' }, exists: { [alias]: true } });
  });

  test('SNAPLOADER_EXCLUDE leaves matching files out of the tree', async () => {
    const { fn, r } = await invokeOnce(config('probe.handler', 'native.zip', { SNAPLOADER_EXCLUDE: 'lib/**' }), { exists: [`${TREE}/lib/libabs.so`, `${TREE}/fancy/__init__.py`] });
    expect(json(r).exists).toEqual({ [`${TREE}/lib/libabs.so`]: false, [`${TREE}/fancy/__init__.py`]: true });
    expect(fn.snaploaderLog()[0]).toMatch(/loaded 4 files .*, 1 filtered out$/);
  });
});

describe('integrity pin (SNAPLOADER_SHA256)', () => {
  let sha256: string;
  beforeAll(() => {
    sha256 = createHash('sha256').update(readFileSync(archive.zipPath)).digest('hex');
  });

  test('the pinned archive loads, every byte of it hashed on the way', async () => {
    const { r } = await invokeOnce(config('handler.handler', 'native.zip', { SNAPLOADER_SHA256: sha256.toUpperCase() }));
    expect(json(r).answer).toBe(42);
  });

  test('any other object is refused before the runtime starts, and no tree is left in /tmp', async () => {
    const pin = 'a'.repeat(64);
    const fn = await LambdaFunction.start(config('handler.handler', 'native.zip', { SNAPLOADER_SHA256: pin }));
    try {
      const r = await fn.invoke();
      expect(r.status).toBe(502);
      const expected = `snaploader: INTEGRITY_MISMATCH: s3://functions/native.zip has SHA-256 ${sha256}, but SNAPLOADER_SHA256 pins ${pin}: this is not the pinned archive; upload the right one or update the pin`;
      expect(new Set(fn.snaploaderLog())).toEqual(new Set([expected]));
      expect(existsSync(fn.tmpPath(TREE))).toBe(false);
    } finally {
      await fn.stop();
    }
  });
});
