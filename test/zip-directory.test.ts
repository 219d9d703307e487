/**
 * The central-directory reader, checked against unzipper's reading of the same archives
 * (made by Info-ZIP and by CPython), and against bad archives named after their error.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as unzipper from 'unzipper';
import { ArchiveError } from '../src/errors';
import { readCentralDirectory, TAIL_BYTES, type CentralDirectory } from '../src/zip/directory';
import { pyZip, writeTree, zipDir } from './support/archive';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'snaploader-zipdir-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function readDir(buf: Buffer, tailBytes = TAIL_BYTES): Promise<CentralDirectory> {
  const tail = buf.subarray(Math.max(0, buf.length - tailBytes));
  return readCentralDirectory(buf.length, tail, async (s, e) => buf.subarray(s, e));
}

async function expectSameAsUnzipper(buf: Buffer, tailBytes?: number): Promise<void> {
  const ours = await readDir(buf, tailBytes);
  const theirs = await unzipper.Open.buffer(buf);
  expect(ours.entries.map((e) => ({
    path: e.name.toString('utf8'),
    crc32: e.crc32,
    compressedSize: e.compressedSize,
    uncompressedSize: e.uncompressedSize,
    offset: e.localHeaderOffset,
    method: e.method,
  }))).toEqual(theirs.files.map((f) => ({
    path: f.path,
    crc32: f.crc32,
    compressedSize: f.compressedSize,
    uncompressedSize: f.uncompressedSize,
    offset: f.offsetToLocalFileHeader,
    method: f.compressionMethod,
  })));
}

describe('reads the same directory as unzipper', () => {
  test('Info-ZIP archive with directories, an executable and a symlink', async () => {
    const src = join(dir, 'infozip');
    writeTree(src, { 'a/b/c.txt': 'hello\n', 'bin/run': { mode: 0o755, content: '#!/bin/sh\n' }, 'a/link': { symlink: 'b/c.txt' } });
    const buf = zipDir(src, join(dir, 'infozip.zip'));
    await expectSameAsUnzipper(buf);
    const entries = (await readDir(buf)).entries;
    const byName = Object.fromEntries(entries.map((e) => [e.name.toString(), e]));
    expect(byName['a/link'].isSymlink).toBe(true);
    expect(byName['a/b/'].isDirectory).toBe(true);
    expect(byName['bin/run'].unixMode & 0o777).toBe(0o755);
  });

  test('stored (zip -0) archive', async () => {
    const src = join(dir, 'stored');
    writeTree(src, { 'x.bin': Buffer.alloc(100000, 7) });
    const buf = zipDir(src, join(dir, 'stored.zip'), { stored: true });
    await expectSameAsUnzipper(buf);
    expect((await readDir(buf)).entries[0].method).toBe(0);
  });

  test('zip64 archive (zip -fz): zip64 end records, sizes from the zip64 extra field', async () => {
    const src = join(dir, 'zip64');
    writeTree(src, { 'big/one.bin': 'x'.repeat(5000), 'two.txt': 'two' });
    const buf = zipDir(src, join(dir, 'zip64.zip'), { zip64: true });
    expect(buf.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(true); // zip64 end record
    await expectSameAsUnzipper(buf);
    const sizes = Object.fromEntries((await readDir(buf)).entries.map((e) => [e.name.toString(), e.uncompressedSize]));
    expect(sizes).toEqual({ 'big/': 0, 'big/one.bin': 5000, 'two.txt': 3 });
  });

  test('an archive comment, and a directory outside the first tail read', async () => {
    const entries = Array.from({ length: 300 }, (_, i) => ({ name: `pkg/module_${i}.py`, text: `X = ${i}\n` }));
    const buf = pyZip(entries, { comment: 'built by the release pipeline' });
    await expectSameAsUnzipper(buf, 100); // the directory needs a second read
  });
});

describe('rejects bad archives, naming the error', () => {
  const good = (): Buffer => pyZip([{ name: 'a.txt', text: 'aaaa' }, { name: 'b.txt', text: 'bbbb' }]);
  const eocdAt = (b: Buffer): number => b.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const cases: [string, () => Buffer, string, RegExp][] = [
    ['not-a-zip', () => Buffer.from('plain text, not an archive'), 'NOT_A_ZIP', /no end-of-central-directory record/],
    ['empty-object', () => Buffer.alloc(0), 'NOT_A_ZIP', /only 0 bytes/],
    ['truncated-end-record', () => good().subarray(0, good().length - 5), 'NOT_A_ZIP', /no end-of-central-directory record/],
    ['multi-disk', () => { const b = good(); b.writeUInt16LE(1, eocdAt(b) + 4); return b; }, 'ZIP_UNSUPPORTED', /multi-disk/],
    ['directory-out-of-bounds', () => { const b = good(); b.writeUInt32LE(b.length, eocdAt(b) + 16); return b; }, 'ZIP_MALFORMED', /runs past its end record/],
    ['entry-count-too-large', () => { const b = good(); b.writeUInt16LE(5000, eocdAt(b) + 8); b.writeUInt16LE(5000, eocdAt(b) + 10); return b; }, 'ZIP_MALFORMED', /claims 5000 entries/],
    ['local-header-offset-out-of-bounds', () => {
      const b = good();
      const cd = b.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
      b.writeUInt32LE(b.length - 10, cd + 42);
      return b;
    }, 'ZIP_MALFORMED', /local header offset .* outside the archive data/],
  ];
  test.each(cases)('%s', async (_name, make, code, message) => {
    const err = await readDir(make()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveError);
    expect((err as ArchiveError).code).toBe(code);
    expect((err as ArchiveError).message).toMatch(message);
  });
});
