/**
 * `snaploader pack`: a real directory (and a real pip install) into a zip the init program's
 * reader accepts, with symlinks, a stable order, no bytecode of another interpreter, its
 * SHA-256, and an upload to a local S3 server.
 */
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCentralDirectory } from '../src/zip/directory';
import { writeTree } from './support/archive';
import { jsonOf, snaploader } from './support/cli';
import { ROOT } from './support/paths';
import { LocalS3 } from './support/s3';

const KiB = 1024;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cli-pack-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A .pyc header: the interpreter's magic number, then \r\n. */
const pyc = (magic: number): Buffer => Buffer.concat([Buffer.from([magic & 0xff, magic >> 8, 0x0d, 0x0a]), Buffer.alloc(12)]);

function sitePackages(name: string): string {
  const src = join(dir, name);
  writeTree(src, {
    'torchish/lib/libbig.so.2': Buffer.alloc(300 * KiB, 7),
    'torchish/lib/libbig.so': { symlink: 'libbig.so.2' },
    'torchish/lib/libmid.so': Buffer.alloc(100 * KiB, 8),
    'torchish/__init__.py': 'from . import core\n',
    'torchish/core.py': 'ANSWER = 42\n',
    'torchish/__pycache__/__init__.cpython-312.pyc': pyc(3531),
    'torchish/__pycache__/__init__.cpython-311.pyc': pyc(3495),
    'torchish/__pycache__/core.cpython-39.opt-1.pyc': pyc(3425),
    'legacy/old.pyc': pyc(3495),
    'legacy/new.pyc': pyc(3531),
  });
  mkdirSync(join(src, 'empty'));
  return src;
}

async function entryNames(zip: string): Promise<{ name: string; symlink: boolean; size: number }[]> {
  const buf = readFileSync(zip);
  const cd = await readCentralDirectory(buf.length, buf, async (s, e) => buf.subarray(s, e));
  return cd.entries.map((e) => ({ name: e.name.toString(), symlink: e.isSymlink, size: e.uncompressedSize }));
}

describe('snaploader pack', () => {
  test('writes symlinks as links, the largest files first, and no bytecode the runtime would not load', async () => {
    const src = sitePackages('site');
    const zip = join(dir, 'libs.zip');
    const r = await snaploader(['pack', src, '-o', zip, '--runtime', 'python3.12', '--json']);
    expect(r.code).toBe(0);
    const j = jsonOf(r);
    expect(j.sha256).toBe(createHash('sha256').update(readFileSync(zip)).digest('hex'));
    expect(j).toMatchObject({ files: 6, symlinks: 1, directories: 1, droppedBytecode: { files: 3 } });
    expect(j.environment).toEqual({ AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh', SNAPLOADER_SHA256: j.sha256 });
    const entries = await entryNames(zip);
    expect(entries.slice(0, 2).map((e) => e.name)).toEqual(['torchish/lib/libbig.so.2', 'torchish/lib/libmid.so']);
    expect(entries.find((e) => e.name === 'torchish/lib/libbig.so')).toMatchObject({ symlink: true });
    expect(entries.map((e) => e.name).sort()).toEqual([
      'empty/', 'legacy/new.pyc', 'torchish/__init__.py', 'torchish/__pycache__/__init__.cpython-312.pyc', 'torchish/core.py',
      'torchish/lib/libbig.so', 'torchish/lib/libbig.so.2', 'torchish/lib/libmid.so',
    ]);
    // Info-ZIP's unzip restores the link as a link.
    const out = join(dir, 'unzipped');
    execFileSync('unzip', ['-q', zip, '-d', out]);
    expect(lstatSync(join(out, 'torchish/lib/libbig.so')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(out, 'torchish/lib/libbig.so'))).toBe('libbig.so.2');
    // The same directory gives the same archive.
    const again = jsonOf(await snaploader(['pack', src, '-o', join(dir, 'again.zip'), '--json']));
    expect(again.sha256).toBe(j.sha256);
    // And the init program's planner takes it.
    const inspected = await snaploader(['inspect', zip, '--memory', '512', '--set', 'SNAPLOADER_MEMFD_MIN_SIZE=256K', '--json']);
    expect(jsonOf(inspected).plan).toMatchObject({ memfdFiles: 1, symlinks: 1 });
  });

  test('leaves every .pyc out for a Node.js runtime, and puts the files under the runtime\'s layer directory', async () => {
    const src = sitePackages('site-node');
    const zip = join(dir, 'node.zip');
    const r = await snaploader(['pack', src, '-o', zip, '--runtime', 'nodejs22.x', '--layout', 'layer', '--json']);
    expect(r.code).toBe(0);
    const names = (await entryNames(zip)).map((e) => e.name);
    expect(names.filter((n) => n.endsWith('.pyc'))).toEqual([]);
    expect(names.every((n) => n.startsWith('nodejs/node_modules/'))).toBe(true);
  });

  test('the layer layout puts a site-packages under python/, and keeps a directory already in that layout as it is', async () => {
    const src = sitePackages('site-layer');
    const zip = join(dir, 'layer.zip');
    expect((await snaploader(['pack', src, '-o', zip, '--layout', 'layer'])).code).toBe(0);
    expect((await entryNames(zip)).map((e) => e.name)).toContain('python/torchish/core.py');
    const zip2 = join(dir, 'layer2.zip');
    expect((await snaploader(['pack', join(dir, 'unzipped-none'), '-o', zip2, '--layout', 'layer'])).code).toBe(3);
    writeTree(join(dir, 'already'), { 'python/m.py': 'x\n', 'lib/libz.so': 'z' });
    expect((await snaploader(['pack', join(dir, 'already'), '-o', zip2, '--layout', 'layer'])).code).toBe(0);
    expect((await entryNames(zip2)).map((e) => e.name).sort()).toEqual(['lib/libz.so', 'python/m.py']);
  });

  test('exits 3 for a directory that does not exist and 4 for a symlink that leaves it', async () => {
    const missing = await snaploader(['pack', join(dir, 'no-such-dir'), '-o', join(dir, 'x.zip')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/INPUT_NOT_FOUND: .*no-such-dir does not exist/);
    writeTree(join(dir, 'escape'), { 'a.py': 'x', 'lib/libc.so': { symlink: '../../../etc/passwd' } });
    const escape = await snaploader(['pack', join(dir, 'escape'), '-o', join(dir, 'x.zip'), '--json']);
    expect(escape.code).toBe(4);
    expect(jsonOf(escape).error.code).toBe('UNSAFE_SYMLINK');
    expect(() => lstatSync(join(dir, 'x.zip'))).toThrow();
    expect((await snaploader(['pack', join(dir, 'escape')])).stderr).toMatch(/-o\/--output is required/);
    expect((await snaploader(['pack', join(dir, 'escape'), '-o', 'x.zip', '--arch', 'sparc'])).code).toBe(2);
  });

  test('uploads with multipart to S3 and prints the variables to set; a missing bucket exits 6 naming it', async () => {
    const s3 = await new LocalS3().start();
    try {
      await s3.createBucket('artifacts');
      const src = sitePackages('site-up');
      const zip = join(dir, 'up.zip');
      const r = await snaploader(['pack', src, '-o', zip, '--upload', 's3://artifacts/libs/up.zip'], { env: s3.env() });
      expect(r.code).toBe(0);
      const sha = createHash('sha256').update(readFileSync(zip)).digest('hex');
      expect(r.stdout).toContain(`SNAPLOADER_BUCKET=artifacts\n  SNAPLOADER_KEY=libs/up.zip\n  SNAPLOADER_SHA256=${sha}\n`);
      const obj = await s3.client.send(new GetObjectCommand({ Bucket: 'artifacts', Key: 'libs/up.zip' }));
      expect(Buffer.from(await obj.Body!.transformToByteArray()).equals(readFileSync(zip))).toBe(true);
      const head = await s3.client.send(new HeadObjectCommand({ Bucket: 'artifacts', Key: 'libs/up.zip' }));
      expect(head.Metadata?.['snaploader-sha256']).toBe(sha);
      const missing = await snaploader(['pack', src, '-o', zip, '--upload', 's3://no-such-bucket/libs.zip'], { env: s3.env() });
      expect(missing.code).toBe(6);
      expect(missing.stderr).toMatch(/UPLOAD_FAILED: upload to s3:\/\/no-such-bucket\/libs\.zip failed: bucket no-such-bucket does not exist/);
    } finally {
      await s3.stop();
    }
  });

  test('from a requirements.txt, pip installs binary wheels for the function\'s platform, without bytecode', async () => {
    const wheels = join(dir, 'wheels');
    mkdirSync(wheels, { recursive: true });
    execFileSync('python3', [join(ROOT, 'test/fixtures/cli/make_wheel.py'), 'tinypkg', '1.0', wheels]);
    const req = join(dir, 'requirements.txt');
    writeFileSync(req, 'tinypkg==1.0\n');
    const env = { PIP_NO_INDEX: '1', PIP_FIND_LINKS: wheels };
    const zip = join(dir, 'req.zip');
    const r = await snaploader(['pack', req, '-o', zip, '--arch', 'arm64', '--layout', 'layer', '--json'], { env });
    expect(r.code).toBe(0);
    const names = (await entryNames(zip)).map((e) => e.name);
    expect(names).toContain('python/tinypkg/__init__.py');
    expect(names.filter((n) => n.endsWith('.pyc'))).toEqual([]);
    writeFileSync(req, 'no-such-package-anywhere==9.9\n');
    const failed = await snaploader(['pack', req, '-o', zip], { env });
    expect(failed.code).toBe(7);
    expect(failed.stderr).toMatch(/PIP_FAILED: pip could not install .*requirements\.txt for python3\.12 on x86_64/);
  });
});
