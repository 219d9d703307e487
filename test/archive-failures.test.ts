/**
 * The bad-archive corpus. Every way an archive can be damaged, hostile or unsupported, each
 * fixture generated here (nothing binary is committed): written by a real tool (Info-ZIP
 * zip, CPython zipfile through test/fixtures/zips/make_zip.py) and byte-patched where it must
 * be malformed, by hand (rawZip) only where no tool writes such an archive. Each fixture is
 * named after the error it must produce, `<CODE>.<what>` (`OK.<what>` for archives that must
 * load), the way yauzl's test/failure/ is; the code is taken from the name.
 *
 * Every case runs through the engine (zip-directory -> plan -> ranges -> extract -> tree,
 * over an in-memory or file-backed source that counts what is read) and, unless it needs a
 * huge input, through the real path: a function in the Lambda sandbox (support/lambda.ts:
 * the emulator, awslambdaric, wrapper.sh -> helper -> init program) against s3rver, behind a
 * proxy that counts the GETs and the bytes served. For every bad archive:
 *   - the init fails (the emulator answers 502) and the handler never runs;
 *   - snaploader's one line, `snaploader: <CODE>: <reason>`, naming the entry when there is one
 *     (the same line again when the emulator, like Lambda, retries the init in the invoke);
 *   - no target directory, no staging directory, nothing else in its parent or the sandbox's
 *     /tmp, nothing new under /tmp/elsewhere or at the traversal targets;
 *   - the init program's peak RSS stays bounded (measured with a --require hook);
 *   - archives refused from the central directory alone are refused before any entry data
 *     is fetched: the engine opens no data stream, the init program makes one GET (the tail).
 *
 * Decided behaviour (the stricter reasonable one): device, FIFO and socket entries are refused
 * (ZIP_UNSUPPORTED); setuid, setgid and sticky bits are dropped, files become plain 0644 or
 * 0755 (OK.setuid-setgid-sticky-bits-dropped). A symlink that leads outside the tree, alone or
 * through a chain of links, is refused; a path through a symlink (`a -> x`, then `a/y`) is a
 * file-and-directory conflict, refused before anything is written.
 *
 * RELIABILITY_REPORT=<path> writes the rows {case, expected, observed, test} the tests
 * measured, as a JSON list, for docs/reliability.md.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, createReadStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { loadConfig } from '../src/config';
import { describe as errorLine } from '../src/errors';
import { extractGroups } from '../src/extract/extractor';
import { groupRanges } from '../src/extract/ranges';
import { PathFilter } from '../src/glob';
import { planPlacement } from '../src/plan';
import { Tree } from '../src/tree';
import { readCentralDirectory, TAIL_BYTES } from '../src/zip/directory';
import {
  bufferSource, fileSource, mapZip, patchName, pyZip, pyZipFile, rawZip, rawZipBuffer, writeSparse, writeTree, zipDir,
  type PyEntry, type ZipMap,
} from './support/archive';
import { TASK_ROOT } from './support/function';
import { LambdaFunction } from './support/lambda';
import { requireBuilt } from './support/paths';
import { LocalS3 } from './support/s3';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const BUCKET = 'corpus';
/** The directory a hostile symlink points at: it must stay as it was. */
const ELSEWHERE = '/tmp/elsewhere';
/** Where `../../` from a target `/tmp/<scratch>/tree` lands: it must never appear. */
const ESCAPED = '/tmp/escaped-by-snaploader-test.txt';
/** The init program's peak RSS must stay under this for every bad archive. */
const RSS_LIMIT_MIB = 128;

// ---------------------------------------------------------------------------------------
// The corpus

type Phase = 'directory' | 'plan' | 'data';

interface Case {
  /** `<CODE>.<what>`: the fixture's name, and the error it must produce. */
  name: string;
  make: (dir: string) => Buffer | Promise<Buffer>;
  /** What the one line must say after `<CODE>: `. */
  reason: RegExp;
  /** The entry the line must name, quoted as the user sees it. */
  entry?: string;
  /** Where it must be caught: 'directory' and 'plan' mean before any entry data is read. */
  phase?: Phase;
  env?: Record<string, string>;
  /** Engine only (a huge input): why. */
  engineOnly?: string;
  /** For OK cases: what the loaded tree must look like. */
  verify?: (target: string) => void;
  /** For sparse fixtures: the file to serve instead of a buffer. */
  file?: string;
}

const codeOf = (c: Case): string => c.name.slice(0, c.name.indexOf('.'));

const TEXT = 'hello from the archive\n'.repeat(40);
const good: PyEntry[] = [
  { name: 'fancy/__init__.py', text: 'X = 1\n' },
  { name: 'fancy/data.txt', text: TEXT },
  { name: 'fancy/more.txt', text: 'more\n' },
];
const base = (): Buffer => pyZip(good);
const storedBase = (): Buffer => pyZip(good.map((e) => ({ ...e, method: 'stored' as const })));
const withGood = (...entries: PyEntry[]): Buffer => pyZip([good[0], ...entries]);

/** A copy of `buf` changed by `f`, given where everything sits. */
function patch(buf: Buffer, f: (b: Buffer, m: ZipMap) => void): Buffer {
  const b = Buffer.from(buf);
  f(b, mapZip(b));
  return b;
}

/** Info-ZIP's zip over a tree, as users make archives (symlinks kept with -y). */
function infoZip(dir: string, name: string, spec: Parameters<typeof writeTree>[1], opts: { zip64?: boolean } = {}): Buffer {
  const src = join(dir, name);
  writeTree(src, spec);
  return zipDir(src, join(dir, `${name}.zip`), opts);
}

/** "A better zip bomb", full overlap: one kernel of deflated zeros, many directory entries pointing at it. */
function fullOverlapBomb(): Buffer {
  const one = pyZip([{ name: 'bomb/0000', zeros: 64 * MiB, level: 9 }]);
  const m = mapZip(one);
  const header = one.subarray(m.entries[0].cdh, m.eocd);
  const headers = Array.from({ length: 100 }, (_, i) => {
    const h = Buffer.from(header);
    Buffer.from(`bomb/${String(i).padStart(4, '0')}`).copy(h, 46);
    return h;
  });
  const cd = Buffer.concat(headers);
  const eocd = Buffer.from(one.subarray(m.eocd));
  eocd.writeUInt16LE(headers.length, 8);
  eocd.writeUInt16LE(headers.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  return Buffer.concat([one.subarray(0, m.cdOffset), cd, eocd]);
}

function mode(target: string, rel: string): number {
  return lstatSync(join(target, rel)).mode & 0o7777;
}

const SPARSE_GAP = 4 * GiB + 512 * MiB;

const CASES: Case[] = [
  // Not a zip at all, or cut short: the end record is gone.
  { name: 'NOT_A_ZIP.shell-script', make: () => Buffer.from('#!/bin/sh\necho this is a script, not an archive\n'), reason: /no end-of-central-directory record/, phase: 'directory' },
  { name: 'NOT_A_ZIP.empty-object', make: () => Buffer.alloc(0), reason: /empty|only 0 bytes/, phase: 'directory' },
  { name: 'NOT_A_ZIP.truncated-inside-end-record', make: () => base().subarray(0, base().length - 7), reason: /no end-of-central-directory record/, phase: 'directory' },
  { name: 'NOT_A_ZIP.truncated-inside-central-directory', make: () => { const b = base(); return b.subarray(0, mapZip(b).entries[1].cdh + 20); }, reason: /no end-of-central-directory record/, phase: 'directory' },
  { name: 'NOT_A_ZIP.truncated-inside-entry-data', make: () => { const b = base(); return b.subarray(0, mapZip(b).entries[1].dataStart + 9); }, reason: /no end-of-central-directory record/, phase: 'directory' },
  { name: 'NOT_A_ZIP.truncated-inside-local-header', make: () => { const b = base(); return b.subarray(0, mapZip(b).entries[2].lfh + 11); }, reason: /no end-of-central-directory record/, phase: 'directory' },
  { name: 'NOT_A_ZIP.comment-length-runs-past-the-end', make: () => patch(pyZip(good, { comment: 'release 1.2' }), (b, m) => b.writeUInt16LE(40, m.eocd + 20)), reason: /no end-of-central-directory record/, phase: 'directory' },
  // Cut right after a zip stored inside the archive: the inner zip's end record is now last.
  { name: 'ZIP_MALFORMED.truncated-after-an-embedded-zip', make: () => {
    const inner = pyZip([{ name: 'inner/x.txt', text: 'inner' }]);
    const outer = pyZip([{ name: 'fancy/__init__.py', text: 'X = 1\n' }, { name: 'vendor/inner.zip', base64: inner.toString('base64'), method: 'stored' }, { name: 'z.txt', text: 'after' }]);
    const e = mapZip(outer).entries[1];
    return outer.subarray(0, e.dataStart + e.compressedSize);
  }, reason: /central directory \(offset \d+, \d+ bytes\) ends at \d+, not at its end record/, phase: 'directory' },
  { name: 'ZIP_MALFORMED.data-prepended-unadjusted', make: () => Buffer.concat([Buffer.from('#!/bin/sh\nexec unzip "$0"\n'), base()]), reason: /bytes were added to or cut from the archive/, phase: 'directory' },

  // End record and central directory out of bounds or inconsistent.
  { name: 'ZIP_MALFORMED.directory-offset-out-of-bounds', make: () => patch(base(), (b, m) => b.writeUInt32LE(m.eocd + 100, m.eocd + 16)), reason: /runs past its end record/, phase: 'directory' },
  { name: 'ZIP_MALFORMED.directory-size-out-of-bounds', make: () => patch(base(), (b, m) => b.writeUInt32LE(0x7fffffff, m.eocd + 12)), reason: /runs past its end record/, phase: 'directory' },
  { name: 'ZIP_MALFORMED.entry-count-larger-than-directory', make: () => patch(base(), (b, m) => { b.writeUInt16LE(5000, m.eocd + 8); b.writeUInt16LE(5000, m.eocd + 10); }), reason: /claims 5000 entries/, phase: 'directory' },
  { name: 'ZIP_MALFORMED.entry-count-smaller-than-directory', make: () => patch(base(), (b, m) => { b.writeUInt16LE(2, m.eocd + 8); b.writeUInt16LE(2, m.eocd + 10); }), reason: /counts 2 entries but the central directory has \d+ more bytes/, phase: 'directory' },
  { name: 'ZIP_MALFORMED.central-header-signature-corrupt', make: () => patch(base(), (b, m) => b.writeUInt32LE(0x02014b51, m.entries[1].cdh)), reason: /central directory entry 1 at offset \d+ is missing or truncated/, phase: 'directory' },
  { name: 'ZIP_MALFORMED.zip64-locator-out-of-bounds', make: (d) => patch(infoZip(d, 'z64a', { 'fancy/__init__.py': 'X = 1\n' }, { zip64: true }), (b, m) => b.writeBigUInt64LE(BigInt(b.length) + 1000n, m.locator! + 8)), reason: /zip64 end record offset \d+ is out of bounds/, phase: 'directory' },
  { name: 'ZIP_MALFORMED.zip64-locator-points-at-data', make: (d) => patch(infoZip(d, 'z64b', { 'fancy/__init__.py': 'X = 1\n' }, { zip64: true }), (b, m) => b.writeBigUInt64LE(0n, m.locator! + 8)), reason: /no zip64 end record at offset 0/, phase: 'directory' },
  { name: 'ZIP_MALFORMED.zip64-values-without-locator', make: () => patch(base(), (b, m) => b.writeUInt32LE(0xffffffff, m.eocd + 16)), reason: /needs zip64 values but there is no zip64 locator/, phase: 'directory' },
  { name: 'ZIP_MALFORMED.zip64-extra-field-missing', make: () => patch(base(), (b, m) => b.writeUInt32LE(0xffffffff, m.entries[1].cdh + 24)), reason: /needs a zip64 extra field but has none/, entry: '"fancy/data.txt"', phase: 'directory' },
  { name: 'ZIP_MALFORMED.zip64-size-over-2-to-the-53', make: () => rawZipBuffer(rawZip([{ name: 'fancy/__init__.py', data: Buffer.from('X = 1\n') }, { name: 'huge/weights.bin', data: deflateRawSync(Buffer.alloc(4096)), method: 8, uncompressedSize: 2 ** 60 }])), reason: /declares a size over 2\^53 bytes/, entry: '"huge/weights.bin"', phase: 'directory' },
  { name: 'ZIP_MALFORMED.local-header-offset-out-of-bounds', make: () => patch(base(), (b, m) => b.writeUInt32LE(m.cdOffset - 10, m.entries[1].cdh + 42)), reason: /local header offset \(\d+\) outside the archive data/, entry: '"fancy/data.txt"', phase: 'directory' },

  // Local headers that disagree with the directory.
  { name: 'ZIP_MALFORMED.local-header-signature-corrupt', make: () => patch(base(), (b, m) => b.writeUInt32LE(0x04034b51, m.entries[1].lfh)), reason: /no local header at offset \d+/, entry: '"fancy/data.txt"', phase: 'data' },
  { name: 'ZIP_MALFORMED.local-name-differs', make: () => patch(base(), (b, m) => { b[m.entries[1].lfh + 30 + 6] = 0x44; }), reason: /the local header names it "fancy\/Data\.txt"/, entry: '"fancy/data.txt"', phase: 'data' },
  { name: 'ZIP_MALFORMED.local-extra-field-overruns-entry', make: () => patch(base(), (b, m) => b.writeUInt16LE(0xfff0, m.entries[1].lfh + 28)), reason: /its data runs into the next entry/, entry: '"fancy/data.txt"', phase: 'data' },
  { name: 'ZIP_MALFORMED.corrupt-deflate-stream', make: () => patch(base(), (b, m) => { b[m.entries[1].dataStart] = 0xff; }), reason: /its deflate data is corrupt/, entry: '"fancy/data.txt"', phase: 'data' },
  { name: 'ZIP_MALFORMED.stored-sizes-disagree', make: () => patch(storedBase(), (b, m) => b.writeUInt32LE(5, m.entries[1].cdh + 20)), reason: /declares 5 bytes compressed but \d+ uncompressed/, entry: '"fancy/data.txt"', phase: 'plan' },

  // Overlapping entries: zip bombs that reuse data.
  { name: 'ZIP_MALFORMED.overlap-full-better-zip-bomb', make: fullOverlapBomb, reason: /entries "bomb\/0000" and "bomb\/0001" share their data at offset 0 \(overlapping entries, as in a zip bomb\)/, entry: '"bomb/0000"', phase: 'plan' },
  { name: 'ZIP_MALFORMED.overlap-quoted-ranges', make: () => patch(pyZip([0, 1, 2, 3].map((i) => ({ name: `q/${i}`, text: `kernel ${i} `.repeat(20), method: 'stored' as const }))), (b, m) => {
    for (const e of m.entries) {
      b.writeUInt32LE(m.cdOffset - e.dataStart, e.cdh + 20);
      b.writeUInt32LE(m.cdOffset - e.dataStart, e.cdh + 24);
    }
  }), reason: /declares \d+ compressed bytes, more than the \d+ bytes before the next entry/, entry: '"q/0"', phase: 'plan' },
  { name: 'ZIP_MALFORMED.overlap-offset-inside-previous-entry', make: () => patch(storedBase(), (b, m) => b.writeUInt32LE(m.entries[1].dataStart + 40, m.entries[2].cdh + 42)), reason: /declares \d+ compressed bytes, more than the \d+ bytes before the next entry/, entry: '"fancy/data.txt"', phase: 'plan' },

  // Multi-disk.
  { name: 'ZIP_UNSUPPORTED.multi-disk-end-record', make: () => patch(base(), (b, m) => { b.writeUInt16LE(1, m.eocd + 4); b.writeUInt16LE(1, m.eocd + 6); }), reason: /multi-disk \(spanned or split\) archives are not supported/, phase: 'directory' },
  { name: 'ZIP_UNSUPPORTED.split-archive-infozip', make: (d) => {
    const src = join(d, 'split');
    let x = 2463534242;
    const noise = Buffer.from(Array.from({ length: 200000 }, () => ((x ^= x << 13, x ^= x >>> 17, x ^= x << 5) >>> 0) & 0xff));
    writeTree(src, { 'fancy/__init__.py': 'X = 1\n', 'fancy/blob.bin': noise }); // incompressible: it must span segments
    execFileSync('zip', ['-q', '-r', '-X', '-s', '64k', join(d, 'split.zip'), '.'], { cwd: src });
    return readFileSync(join(d, 'split.zip'));
  }, reason: /multi-disk/, phase: 'directory' },
  { name: 'ZIP_UNSUPPORTED.entry-starts-on-another-disk', make: () => patch(base(), (b, m) => b.writeUInt16LE(1, m.entries[1].cdh + 34)), reason: /starts on disk 1: multi-disk archives are not supported/, entry: '"fancy/data.txt"', phase: 'directory' },
  { name: 'ZIP_UNSUPPORTED.zip64-locator-counts-two-disks', make: (d) => patch(infoZip(d, 'z64c', { 'fancy/__init__.py': 'X = 1\n' }, { zip64: true }), (b, m) => b.writeUInt32LE(2, m.locator! + 16)), reason: /multi-disk/, phase: 'directory' },

  // Features we do not read.
  { name: 'ZIP_UNSUPPORTED.encrypted-zipcrypto-infozip', make: (d) => {
    const src = join(d, 'enc');
    writeTree(src, { 'secret/key.txt': 'the key\n' });
    execFileSync('zip', ['-q', '-r', '-X', '-P', 'hunter2', join(d, 'enc.zip'), '.'], { cwd: src });
    return readFileSync(join(d, 'enc.zip'));
  }, reason: /is encrypted; snaploader reads only unencrypted archives/, entry: '"secret/key.txt"', phase: 'plan' },
  { name: 'ZIP_UNSUPPORTED.method-bzip2', make: () => withGood({ name: 'fancy/model.bin', text: TEXT, method: 'bzip2' }), reason: /uses compression method 12; only stored \(0\) and deflate \(8\)/, entry: '"fancy/model.bin"', phase: 'plan' },
  { name: 'ZIP_UNSUPPORTED.method-lzma', make: () => withGood({ name: 'fancy/model.bin', text: TEXT, method: 'lzma' }), reason: /uses compression method 14/, entry: '"fancy/model.bin"', phase: 'plan' },
  { name: 'ZIP_UNSUPPORTED.method-99-aes-marker', make: () => patch(base(), (b, m) => { b.writeUInt16LE(99, m.entries[1].cdh + 10); b.writeUInt16LE(99, m.entries[1].lfh + 8); }), reason: /uses compression method 99/, entry: '"fancy/data.txt"', phase: 'plan' },

  // Data that does not match what the directory declares.
  { name: 'ENTRY_CRC_MISMATCH.data-byte-flipped', make: () => patch(storedBase(), (b, m) => { b[m.entries[1].dataStart + 3] ^= 0x20; }), reason: /CRC-32 expected [0-9a-f]{8}, got [0-9a-f]{8} \(corrupt archive: upload it again\)/, entry: '"fancy/data.txt"', phase: 'data' },
  { name: 'ENTRY_CRC_MISMATCH.directory-crc-wrong', make: () => patch(base(), (b, m) => b.writeUInt32LE(0xdeadbeef, m.entries[1].cdh + 16)), reason: /CRC-32 expected deadbeef, got/, entry: '"fancy/data.txt"', phase: 'data' },
  { name: 'ENTRY_SIZE_MISMATCH.inflates-past-declared-size', make: () => patch(pyZip([good[0], { name: 'fancy/bomb.bin', zeros: 256 * MiB, level: 1 }]), (b, m) => {
    b.writeUInt32LE(1024, m.entries[1].cdh + 24);
    b.writeUInt32LE(1024, m.entries[1].lfh + 22);
  }), reason: /inflates to more than its declared 1024 bytes/, entry: '"fancy/bomb.bin"', phase: 'data' },
  { name: 'ENTRY_SIZE_MISMATCH.inflates-short-of-declared-size', make: () => patch(base(), (b, m) => b.writeUInt32LE(TEXT.length + 100, m.entries[1].cdh + 24)), reason: new RegExp(`expected ${TEXT.length + 100} bytes, got ${TEXT.length}`), entry: '"fancy/data.txt"', phase: 'data' },
  { name: 'ENTRY_SIZE_MISMATCH.symlink-target-over-4096-bytes', make: () => withGood({ name: 'fancy/link', text: 'x/'.repeat(2500), mode: 0o120777 }), reason: /has a 5000-byte target \(limit 4096\)/, entry: '"fancy/link"', phase: 'data' },

  // More than the budgets: refused from the directory, before any entry data is fetched.
  { name: 'BUDGET_EXCEEDED.declared-total-over-memory-budget', make: () => pyZip([0, 1, 2].map((i) => ({ name: `big/part${i}.bin`, zeros: 256 * MiB, level: 1 }))),
    env: { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512' }, reason: /the archive needs 512\.0 MiB in \/tmp but SNAPLOADER_TMP_BUDGET is 384\.0 MiB .*2 large files did not fit SNAPLOADER_MEMORY_BUDGET=256\.0 MiB/, phase: 'plan' },
  { name: 'BUDGET_EXCEEDED.zip64-declared-1-TiB', make: () => rawZipBuffer(rawZip([{ name: 'fancy/__init__.py', data: Buffer.from('X = 1\n') }, { name: 'huge/weights.bin', data: deflateRawSync(Buffer.alloc(MiB)), method: 8, uncompressedSize: 1024 * GiB }])),
    env: { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '3008' }, reason: /the archive needs 1\.0 TiB in \/tmp|the archive needs 1024\.0 GiB in \/tmp/, phase: 'plan' },

  // Names that would land outside the tree, or that no file system should get.
  { name: 'ENTRY_NAME_UNSAFE.absolute-path', make: () => withGood({ name: '/tmp/elsewhere/abs.txt', text: 'escaped' }), reason: /is an absolute path/, entry: '"/tmp/elsewhere/abs.txt"', phase: 'plan' },
  { name: 'ENTRY_NAME_UNSAFE.dot-dot-segments', make: () => withGood({ name: '../../escaped-by-snaploader-test.txt', text: 'escaped' }), reason: /has a "\.\." segment/, entry: '"../../escaped-by-snaploader-test.txt"', phase: 'plan' },
  { name: 'ENTRY_NAME_UNSAFE.dot-dot-inside-path', make: () => withGood({ name: 'fancy/../../escaped-by-snaploader-test.txt', text: 'escaped' }), reason: /has a "\.\." segment/, entry: '"fancy/../../escaped-by-snaploader-test.txt"', phase: 'plan' },
  { name: 'ENTRY_NAME_UNSAFE.backslash', make: () => withGood({ name: '..\\..\\escaped.txt', text: 'escaped' }), reason: /contains a backslash/, entry: '"..\\\\..\\\\escaped.txt"', phase: 'plan' },
  { name: 'ENTRY_NAME_UNSAFE.drive-letter', make: () => withGood({ name: 'C:/Windows/System32/evil.dll', text: 'MZ' }), reason: /starts with a drive letter/, entry: '"C:/Windows/System32/evil.dll"', phase: 'plan' },
  { name: 'ENTRY_NAME_UNSAFE.nul-byte', make: () => patchName(withGood({ name: 'fancy/evil.so_.txt', text: 'x' }), 'fancy/evil.so_.txt', Buffer.from('fancy/evil.so\0.txt')), reason: /contains a control byte/, entry: '"fancy/evil.so\\\\x00.txt"', phase: 'plan' },
  { name: 'ENTRY_NAME_UNSAFE.control-bytes', make: () => withGood({ name: 'fancy/\x1b[2Jclear.txt', text: 'x' }), reason: /contains a control byte/, entry: '"fancy/\\\\x1b[2Jclear.txt"', phase: 'plan' },
  { name: 'ENTRY_NAME_UNSAFE.newline-in-name', make: () => withGood({ name: 'fancy/a\nsnaploader: loaded.txt', text: 'x' }), reason: /contains a control byte/, entry: '"fancy/a\\\\x0asnaploader: loaded.txt"', phase: 'plan' },
  { name: 'ENTRY_NAME_UNSAFE.over-long-name', make: () => withGood({ name: `${'d'.repeat(199)}/`.repeat(20) + 'f.txt', text: 'x' }), reason: /has a 4005-byte name \(limit 4000\)/, entry: `"${'d'.repeat(20)}`, phase: 'plan' },
  { name: 'ENTRY_NAME_UNSAFE.over-long-segment', make: () => withGood({ name: `fancy/${'x'.repeat(256)}.txt`, text: 'x' }), reason: /has a path segment over 255 bytes/, entry: `"fancy/${'x'.repeat(100)}`, phase: 'plan' },
  { name: 'ENTRY_NAME_UNSAFE.empty-name', make: () => withGood({ name: '', text: 'x' }), reason: /has an empty name/, entry: '""', phase: 'plan' },
  { name: 'ENTRY_NAME_UNSAFE.empty-segment', make: () => withGood({ name: 'fancy//x.txt', text: 'x' }), reason: /has an empty path segment/, entry: '"fancy//x.txt"', phase: 'plan' },
  { name: 'ENTRY_NAME_UNSAFE.dot-segment', make: () => withGood({ name: 'fancy/./x.txt', text: 'x' }), reason: /has a "\." segment/, entry: '"fancy/./x.txt"', phase: 'plan' },
  { name: 'ENTRY_NAME_UNSAFE.reserved-directory', make: () => withGood({ name: '.snaploader/map', text: 'PATH /etc/passwd\n' }), reason: /reserves for its own files/, entry: '".snaploader/map"', phase: 'plan' },

  // Symlinks that lead out of the tree, and paths written through symlinks.
  { name: 'ENTRY_NAME_UNSAFE.symlink-to-absolute-path', make: (d) => infoZip(d, 'sl-abs', { 'fancy/__init__.py': 'X = 1\n', a: { symlink: ELSEWHERE } }), reason: /symlink "a" points to "\/tmp\/elsewhere", outside the archive/, entry: '"a"', phase: 'data' },
  { name: 'ENTRY_NAME_UNSAFE.symlink-to-parent', make: (d) => infoZip(d, 'sl-up', { 'fancy/__init__.py': 'X = 1\n', a: { symlink: '..' } }), reason: /symlink "a" points to "\.\.", outside the archive/, entry: '"a"', phase: 'data' },
  { name: 'ENTRY_NAME_UNSAFE.symlink-deep-escape', make: (d) => infoZip(d, 'sl-deep', { 'fancy/__init__.py': 'X = 1\n', 'fancy/sub/a': { symlink: '../../../etc' } }), reason: /points to "\.\.\/\.\.\/\.\.\/etc", outside the archive/, entry: '"fancy/sub/a"', phase: 'data' },
  { name: 'ENTRY_NAME_UNSAFE.symlink-chain-escape', make: (d) => infoZip(d, 'sl-chain', { 'fancy/__init__.py': 'X = 1\n', 'd/up': { symlink: '..' }, esc: { symlink: 'd/up/..' } }), reason: /symlink "esc" points to "d\/up\/\.\.", which leads outside the archive through the symlink "d\/up"/, entry: '"esc"', phase: 'data' },
  { name: 'ENTRY_CONFLICT.write-through-symlink-to-elsewhere', make: () => pyZip([good[0], { name: 'a', text: ELSEWHERE, mode: 0o120777 }, { name: 'a/x.txt', text: 'written through the link' }]), reason: /"a" is both a file and a directory in the archive/, entry: '"a"', phase: 'plan' },
  { name: 'ENTRY_CONFLICT.write-through-symlink-to-parent', make: () => pyZip([good[0], { name: 'a', text: '..', mode: 0o120777 }, { name: 'a/x.txt', text: 'written through the link' }]), reason: /"a" is both a file and a directory in the archive/, entry: '"a"', phase: 'plan' },

  // Names that collide.
  { name: 'ENTRY_CONFLICT.duplicate-name', make: () => patchName(pyZip([good[0], { name: 'fancy/a.txt', text: 'one' }, { name: 'fancy/b.txt', text: 'two' }]), 'fancy/b.txt', Buffer.from('fancy/a.txt')), reason: /"fancy\/a\.txt" appears twice in the archive/, entry: '"fancy/a.txt"', phase: 'plan' },
  { name: 'ENTRY_CONFLICT.file-then-directory', make: () => withGood({ name: 'fancy/x', text: 'a file' }, { name: 'fancy/x/y.txt', text: 'under it' }), reason: /"fancy\/x" is both a file and a directory/, entry: '"fancy/x"', phase: 'plan' },
  { name: 'ENTRY_CONFLICT.directory-entry-and-file', make: () => withGood({ name: 'fancy/x/', text: '', mode: 0o40755 }, { name: 'fancy/x', text: 'a file' }), reason: /"fancy\/x" is both a file and a directory/, entry: '"fancy/x"', phase: 'plan' },

  // File types that are never created.
  { name: 'ZIP_UNSUPPORTED.fifo-entry', make: () => withGood({ name: 'dev/fifo', text: '', mode: 0o10644 }), reason: /is a FIFO \(named pipe\); snaploader extracts only regular files, directories and symlinks/, entry: '"dev/fifo"', phase: 'plan' },
  { name: 'ZIP_UNSUPPORTED.character-device-entry', make: () => withGood({ name: 'dev/tty0', text: '', mode: 0o20660 }), reason: /is a character device/, entry: '"dev/tty0"', phase: 'plan' },
  { name: 'ZIP_UNSUPPORTED.block-device-entry', make: () => withGood({ name: 'dev/sda', text: '', mode: 0o60660 }), reason: /is a block device/, entry: '"dev/sda"', phase: 'plan' },
  { name: 'ZIP_UNSUPPORTED.socket-entry', make: () => withGood({ name: 'run/app.sock', text: '', mode: 0o140755 }), reason: /is a socket/, entry: '"run/app.sock"', phase: 'plan' },

  // Archives that must load.
  { name: 'OK.setuid-setgid-sticky-bits-dropped', make: () => pyZip([
    good[0],
    { name: 'bin/suid-tool', text: '#!/bin/sh\n', mode: 0o104755 },
    { name: 'bin/sgid-tool', text: '#!/bin/sh\n', mode: 0o102755 },
    { name: 'data/sticky.txt', text: 'x', mode: 0o101644 },
    { name: 'data/suid-noexec.txt', text: 'x', mode: 0o104666 },
    { name: 'shared/', text: '', mode: 0o42777 },
  ]), reason: /^loaded 5 files/, verify: (t) => {
    expect([mode(t, 'bin/suid-tool'), mode(t, 'bin/sgid-tool'), mode(t, 'data/sticky.txt'), mode(t, 'data/suid-noexec.txt'), mode(t, 'shared')])
      .toEqual([0o755, 0o755, 0o644, 0o644, 0o755]);
  } },
  { name: 'OK.zip64-infozip', make: (d) => infoZip(d, 'z64ok', { 'fancy/__init__.py': 'X = 1\n', 'fancy/data.txt': TEXT }, { zip64: true }), reason: /^loaded 2 files/, verify: (t) => {
    expect(readFileSync(join(t, 'fancy/data.txt'), 'utf8')).toBe(TEXT);
  } },
  { name: 'OK.zip64-offsets-above-4-GiB', engineOnly: 'a 4.5 GiB sparse object, which s3rver would store in full (served instead by a range server over the sparse file)',
    make: (d) => {
      const path = join(d, 'sparse-offsets.zip');
      pyZipFile([good[0], { name: 'fancy/data.txt', text: TEXT }, { name: 'lib/libdata.so', base64: Buffer.alloc(300000, 7).toString('base64') }], path, SPARSE_GAP);
      return Buffer.alloc(0);
    },
    file: 'sparse-offsets.zip', reason: /^loaded 3 files/, verify: (t) => {
      expect(readFileSync(join(t, 'fancy/data.txt'), 'utf8')).toBe(TEXT);
      expect(readFileSync(join(t, 'lib/libdata.so')).equals(Buffer.alloc(300000, 7))).toBe(true);
    } },
  { name: 'OK.zip64-stored-entry-over-4-GiB-excluded', engineOnly: 'a 4.5 GiB sparse object, which s3rver would store in full (served instead by a range server over the sparse file)',
    make: (d) => {
      writeSparse(rawZip([
        { name: 'huge/weights.bin', hole: SPARSE_GAP },
        { name: 'fancy/__init__.py', data: Buffer.from('X = 1\n') },
        { name: 'fancy/data.txt', data: deflateRawSync(Buffer.from(TEXT)), method: 8, uncompressedSize: TEXT.length, crc32: crc32(TEXT) },
      ]), join(d, 'sparse-sizes.zip'));
      return Buffer.alloc(0);
    },
    env: { SNAPLOADER_EXCLUDE: 'huge/**' }, file: 'sparse-sizes.zip', reason: /^loaded 2 files .*1 filtered out/, verify: (t) => {
      expect(readFileSync(join(t, 'fancy/data.txt'), 'utf8')).toBe(TEXT);
      expect(existsSync(join(t, 'huge'))).toBe(false);
    } },
];

// ---------------------------------------------------------------------------------------
// Harness

let work: string;
let s3: LocalS3;
let proxy: CountingProxy;
let rangeServer: RangeServer;
let task: string;
let madeElsewhere = false;
let elsewhereBefore: string[] = [];
const fixtures = new Map<string, { buf: Buffer; path: string }>();
const rows: { case: string; expected: string; observed: string; test: string }[] = [];

interface Request { key: string; range: string; bytes: number }

/** A proxy in front of s3rver that records every request's Range and the bytes it served. */
class CountingProxy {
  readonly requests: Request[] = [];
  private server!: Server;
  endpoint = '';

  async start(upstream: string): Promise<this> {
    const up = new URL(upstream);
    this.server = createServer((req, res) => {
      const rec: Request = { key: decodeURIComponent((req.url ?? '').split('?')[0]), range: String(req.headers.range ?? ''), bytes: 0 };
      this.requests.push(rec);
      // Headers go through unchanged (Host included): the SigV4 signature covers them.
      const out = request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        res.flushHeaders();
        r.on('data', (d: Buffer) => (rec.bytes += d.length));
        // An upstream body cut short (s3rver declares 1 byte for a range of an empty object
        // and sends none) reaches the client as a cut connection, as it would directly.
        r.on('close', () => {
          if (!r.complete) res.destroy();
        });
        r.pipe(res);
      });
      out.on('error', () => res.destroy());
      req.pipe(out);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Just enough S3 (GetObject with Range and If-Match) to serve sparse files s3rver would store in full. */
class RangeServer {
  readonly requests: Request[] = [];
  readonly files = new Map<string, string>();
  private server!: Server;
  endpoint = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const key = decodeURIComponent((req.url ?? '').split('?')[0].replace(/^\/[^/]+\//, ''));
      const rec: Request = { key, range: String(req.headers.range ?? ''), bytes: 0 };
      this.requests.push(rec);
      const path = this.files.get(key);
      if (!path || req.method !== 'GET') {
        res.writeHead(404, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>');
        return;
      }
      const size = statSync(path).size;
      const etag = `"sparse-${size}"`;
      if (req.headers['if-match'] && req.headers['if-match'] !== etag) {
        res.writeHead(412, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>');
        return;
      }
      const m = /^bytes=(\d*)-(\d*)$/.exec(rec.range);
      let start = 0;
      let end = size - 1;
      if (m && m[1] === '') start = Math.max(0, size - Number(m[2]));
      else if (m) {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(size - 1, Number(m[2]));
      }
      res.writeHead(m ? 206 : 200, {
        'content-length': String(end - start + 1),
        ...(m ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
        etag, 'accept-ranges': 'bytes', 'content-type': 'application/zip', 'last-modified': new Date(0).toUTCString(),
      });
      const body = createReadStream(path, { start, end });
      body.on('data', (d) => (rec.bytes += (d as Buffer).length));
      body.pipe(res);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

beforeAll(async () => {
  requireBuilt();
  work = mkdtempSync(join(tmpdir(), 'snaploader-corpus-'));
  mkdirSync(join(work, 'fixtures'));
  mkdirSync(join(work, 'build'));
  // The init program's peak RSS, written at its exit by a --require'd hook. The helper starts it
  // without NODE_OPTIONS (those are the runtime's), so it is given through SNAPLOADER_NODE.
  // The function's /var/task: the test handlers, and the hook and the node that runs it.
  task = join(work, 'task');
  mkdirSync(task);
  for (const f of ['handler.py', 'absent.py']) writeFileSync(join(task, f), readFileSync(join(TASK_ROOT, f)));
  writeFileSync(join(task, 'rss-hook.js'), "process.on('exit', () => { const f = process.env.SNAPLOADER_TEST_RSS_FILE; if (f) require('fs').writeFileSync(f, String(process.resourceUsage().maxRSS)); });\n");
  writeFileSync(join(task, 'node-with-rss-hook'), '#!/bin/sh\nexec /opt/snaploader/node/bin/node --require /var/task/rss-hook.js "$@"\n', { mode: 0o755 });
  if (!existsSync(ELSEWHERE)) {
    mkdirSync(ELSEWHERE);
    madeElsewhere = true;
  }
  elsewhereBefore = readdirSync(ELSEWHERE);
  expect(existsSync(ESCAPED)).toBe(false);

  for (const c of CASES) {
    const buf = await c.make(join(work, 'build'));
    const path = c.file ? join(work, 'build', c.file) : join(work, 'fixtures', `${c.name}.zip`);
    if (!c.file) writeFileSync(path, buf);
    fixtures.set(c.name, { buf, path });
  }
  s3 = await new LocalS3().start();
  await s3.createBucket(BUCKET);
  for (const c of CASES) if (!c.engineOnly) await s3.put(BUCKET, `${c.name}.zip`, fixtures.get(c.name)!.buf);
  proxy = await new CountingProxy().start(s3.endpoint);
  rangeServer = await new RangeServer().start();
  for (const c of CASES) if (c.file) rangeServer.files.set(`${c.name}.zip`, fixtures.get(c.name)!.path);
}, 300000);

afterAll(async () => {
  await proxy?.stop();
  await rangeServer?.stop();
  await s3?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
  if (madeElsewhere && existsSync(ELSEWHERE) && readdirSync(ELSEWHERE).length === 0) rmdirSync(ELSEWHERE);
  if (process.env.RELIABILITY_REPORT) writeFileSync(process.env.RELIABILITY_REPORT, `${JSON.stringify(rows, null, 2)}\n`);
});

function record(c: Case, observed: string): void {
  rows.push({
    case: c.name,
    expected: codeOf(c) === 'OK' ? `loads${c.env ? ` (${Object.entries(c.env).map(([k, v]) => `${k}=${v}`).join(' ')})` : ''}` : `${codeOf(c)}${c.entry ? ` naming ${c.entry}` : ''}${c.phase === 'directory' || c.phase === 'plan' ? ', before any entry data is read' : ''}`,
    observed,
    test: expect.getState().currentTestName ?? '',
  });
}

/** Nothing may appear where hostile names and links point. */
function expectNothingEscaped(): void {
  expect(readdirSync(ELSEWHERE)).toEqual(elsewhereBefore);
  expect(existsSync(ESCAPED)).toBe(false);
}

const fmtMiB = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

// ---------------------------------------------------------------------------------------
// The engine, as main.ts drives it, over a counting source

interface EngineOutcome {
  line: string | null;
  phase: Phase | 'done';
  /** Ranges read: the tail first, then the directory if outside it, then entry data streams. */
  reads: [number, number][];
  /** The reads after the central directory was read: entry data. */
  dataReads: [number, number][];
  parent: string;
  target: string;
}

async function runEngine(c: Case): Promise<EngineOutcome> {
  const fx = fixtures.get(c.name)!;
  const parent = mkdtempSync(join(tmpdir(), 'snaploader-corpus-engine-'));
  const target = join(parent, 'tree');
  const file = c.file ? fileSource(fx.path) : null;
  const mem = bufferSource(fx.buf);
  const reads: [number, number][] = [];
  let directoryReads = Infinity;
  const source = {
    url: mem.url,
    size: file ? file.size : mem.size,
    read: async (s: number, e: number) => (reads.push([s, e]), (file ?? mem).read(s, e)),
    stream: async (s: number, e: number) => (reads.push([s, e]), (file ?? mem).stream(s, e)),
  };
  const config = loadConfig({ SNAPLOADER_BUCKET: BUCKET, SNAPLOADER_KEY: `${c.name}.zip`, SNAPLOADER_TARGET_DIR: target, ...c.env });
  let phase: Phase = 'directory';
  try {
    const tail = await source.read(Math.max(0, source.size - TAIL_BYTES), source.size);
    const directory = await readCentralDirectory(source.size, tail, source.read);
    directoryReads = reads.length;
    phase = 'plan';
    const plan = planPlacement(directory.entries, new PathFilter(config.include, config.exclude), config);
    const groups = groupRanges(plan.files, directory.entries, directory.directoryOffset, config.rangeSize, 256 * 1024);
    phase = 'data';
    const tree = new Tree(target, process.pid);
    tree.prepare();
    try {
      await tree.mkdirs(plan.dirs);
      await extractGroups(source, groups, { concurrency: config.concurrency, rangeSize: config.rangeSize, bufferBudget: 64 * MiB },
        { open: (f) => tree.openFile(f), symlink: (f, t) => tree.symlink(f, t), createPath: (f) => tree.createPath(f), createFailed: (f, err) => tree.createFailed(f, err) });
      tree.writeMeta('map', '');
      tree.commit();
    } catch (err) {
      tree.abort();
      throw err;
    }
    return { line: null, phase: 'done', reads, dataReads: reads.slice(directoryReads), parent, target };
  } catch (err) {
    return { line: errorLine(err), phase, reads, dataReads: reads.slice(directoryReads), parent, target };
  } finally {
    file?.close();
  }
}

describe('the engine refuses every bad archive by name, before writing anything outside the target', () => {
  test.each(CASES.filter((c) => codeOf(c) !== 'OK').map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const o = await runEngine(c);
    try {
      record(c, `${o.line ?? 'loaded (no error)'}; caught at the ${o.phase} stage; ${o.dataReads.length} entry-data reads; ${readdirSync(o.parent).length} files left beside the target`);
      expect(o.line).not.toBeNull();
      const line = o.line!;
      expect(line).toMatch(new RegExp(`^${codeOf(c)}: `));
      expect(line.slice(codeOf(c).length + 2)).toMatch(c.reason);
      if (c.entry) expect(line).toContain(c.entry);
      expect(line).not.toContain('\n');
      if (c.phase) expect(o.phase).toBe(c.phase);
      if (c.phase === 'directory' || c.phase === 'plan') expect(o.dataReads).toEqual([]);
      expect(existsSync(o.target)).toBe(false);
      expect(readdirSync(o.parent)).toEqual([]);
      expectNothingEscaped();
    } finally {
      rmSync(o.parent, { recursive: true, force: true });
    }
  });
});

describe('the engine loads the archives that must work, zip64 past 4 GiB included', () => {
  test.each(CASES.filter((c) => codeOf(c) === 'OK').map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const o = await runEngine(c);
    try {
      const bytes = o.reads.reduce((n, [s, e]) => n + e - s, 0);
      const size = c.file ? statSync(fixtures.get(c.name)!.path).size : fixtures.get(c.name)!.buf.length;
      record(c, `${o.line ?? 'loaded'}; ${o.reads.length} reads, ${bytes} bytes of a ${fmtMiB(size)} archive; entry data read from offset ${Math.min(...o.dataReads.map(([s]) => s))} on`);
      expect(o.line).toBeNull();
      c.verify!(o.target);
      if (c.file) {
        // Only the ranges it needs: the tail (512 KiB), then entry data past the 4.5 GiB hole.
        expect(bytes).toBeLessThan(MiB);
        expect(o.dataReads.length).toBeGreaterThan(0);
        for (const [s] of o.dataReads) expect(s).toBeGreaterThanOrEqual(SPARSE_GAP);
      }
    } finally {
      rmSync(o.parent, { recursive: true, force: true });
    }
  });

  test('the hand-written sparse zip64 archive reads the same with Info-ZIP unzip and CPython zipfile', () => {
    const path = fixtures.get('OK.zip64-stored-entry-over-4-GiB-excluded')!.path;
    expect(statSync(path).size).toBeGreaterThan(SPARSE_GAP);
    expect(statSync(path).blocks * 512).toBeLessThan(MiB); // sparse: nothing of the hole is on disk
    const listing = execFileSync('unzip', ['-Z1', path]).toString().trim().split('\n');
    expect(listing).toEqual(['huge/weights.bin', 'fancy/__init__.py', 'fancy/data.txt']);
    const py = execFileSync('python3', ['-c', 'import sys, zipfile; print([(i.filename, i.file_size, i.header_offset) for i in zipfile.ZipFile(sys.argv[1]).infolist()])', path]).toString();
    expect(py.trim()).toBe(`[('huge/weights.bin', ${SPARSE_GAP}, 0), ('fancy/__init__.py', 6, ${SPARSE_GAP + 30 + 16 + 20}), ('fancy/data.txt', ${TEXT.length}, ${SPARSE_GAP + 30 + 16 + 20 + 30 + 17 + 6})]`);
  });
});

// ---------------------------------------------------------------------------------------
// The real path: wrapper.sh -> helper -> init program, against S3

interface E2EOutcome {
  fn: LambdaFunction;
  /** The invoke's HTTP status (502: the init failed). */
  status: number;
  /** snaploader's log lines, each once (the emulator, like Lambda, retries a failed init). */
  lines: string[];
  /** Whether the handler ran, and what it returned. */
  ran: boolean;
  body: string;
  /** In the sandbox: the target's parent (made beforehand, the function user's), and the target. */
  parent: string;
  target: string;
  requests: Request[];
  rssKiB: number | null;
}

/** Inside the sandbox: ../../ from the target is /tmp, as it was for a target /tmp/<scratch>/tree. */
const SANDBOX_PARENT = '/tmp/work';
const SANDBOX_TARGET = `${SANDBOX_PARENT}/tree`;
const SANDBOX_RSS = '/tmp/init-rss';
/** The sandbox's runtime user (support/sandbox/enter.sh). */
const SANDBOX_UID = 993;
const SANDBOX_GID = 990;

/** Runs a function with archive `c` once; the caller inspects `o` and must call `o.fn.stop()`. */
async function runE2E(c: Case, handler: string): Promise<E2EOutcome> {
  const server = c.file ? rangeServer : proxy;
  // The largest function Lambda runs (10,240 MB), so that memory budgets refuse only what no function could hold.
  const fn = await LambdaFunction.start({ handler, task, memoryMb: 10240, env: {
    AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh',
    ...s3.env(),
    AWS_ENDPOINT_URL_S3: server.endpoint,
    SNAPLOADER_BUCKET: BUCKET,
    SNAPLOADER_KEY: `${c.name}.zip`,
    SNAPLOADER_TARGET_DIR: SANDBOX_TARGET,
    SNAPLOADER_NODE: '/var/task/node-with-rss-hook',
    SNAPLOADER_TEST_RSS_FILE: SANDBOX_RSS,
    ...c.env,
  } });
  // What hostile names and links point at, writable by the function's user so that a write
  // through them would land: /tmp/elsewhere, and the target's parent.
  for (const d of [ELSEWHERE, SANDBOX_PARENT]) {
    mkdirSync(fn.tmpPath(d));
    chownSync(fn.tmpPath(d), SANDBOX_UID, SANDBOX_GID);
  }
  const seen = server.requests.length;
  const r = await fn.invoke();
  const requests = server.requests.slice(seen).filter((q) => q.key.endsWith(`${c.name}.zip`));
  const rssFile = fn.tmpPath(SANDBOX_RSS);
  const rssKiB = existsSync(rssFile) ? Number(readFileSync(rssFile, 'utf8')) : null;
  return { fn, status: r.status, lines: [...new Set(fn.snaploaderLog())], ran: r.status === 200 && !/errorType/.test(r.body), body: r.body,
    parent: fn.tmpPath(SANDBOX_PARENT), target: fn.tmpPath(SANDBOX_TARGET), requests, rssKiB };
}

/** Nothing appeared in the sandbox where hostile names and links point, nor beside the target. */
function expectNothingEscapedInSandbox(o: E2EOutcome): void {
  expect(readdirSync(o.fn.tmpPath(ELSEWHERE))).toEqual([]);
  expect(existsSync(o.fn.tmpPath(ESCAPED))).toBe(false);
  expect(readdirSync(o.fn.tmpPath('/tmp')).sort()).toEqual([basename(ELSEWHERE), basename(SANDBOX_RSS), basename(SANDBOX_PARENT)].sort());
}

function describeRequests(o: E2EOutcome, size: number): string {
  const bytes = o.requests.reduce((n, q) => n + q.bytes, 0);
  return `${o.requests.length} GET${o.requests.length === 1 ? '' : 's'} (${o.requests.map((q) => q.range || 'whole').join(', ')}), ${bytes} bytes served of ${size}`;
}

describe('in the Lambda sandbox, through the emulator, wrapper.sh, the helper and the init program: the init fails, one line, nothing written', () => {
  test.each(CASES.filter((c) => codeOf(c) !== 'OK' && !c.engineOnly).map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const o = await runE2E(c, 'handler.handler');
    try {
      const size = fixtures.get(c.name)!.buf.length;
      record(c, `invoke ${o.status}; snaploader ${JSON.stringify(o.lines)}; handler ${o.ran ? 'RAN' : 'did not run'}; ` +
        `target ${existsSync(o.target) ? 'PRESENT' : 'absent'}; beside it: ${JSON.stringify(readdirSync(o.parent))}; ` +
        `${describeRequests(o, size)}; init peak RSS ${o.rssKiB === null ? 'not measured' : fmtMiB(o.rssKiB * 1024)}`);
      expect(o.status).toBe(502);
      expect(o.ran).toBe(false);
      expect(o.lines).toHaveLength(1);
      expect(o.lines[0]).toMatch(new RegExp(`^snaploader: ${codeOf(c)}: `));
      expect(o.lines[0].slice(`snaploader: ${codeOf(c)}: `.length)).toMatch(c.reason);
      if (c.entry) expect(o.lines[0]).toContain(c.entry);
      expect(existsSync(o.target)).toBe(false);
      expect(readdirSync(o.parent)).toEqual([]);
      expectNothingEscapedInSandbox(o);
      expectNothingEscaped();
      expect(o.rssKiB).not.toBeNull();
      expect(o.rssKiB! / 1024).toBeLessThan(RSS_LIMIT_MIB);
      if (c.phase === 'directory' || c.phase === 'plan') {
        // Refused from the tail alone: no entry data was asked for. (s3rver answers the suffix
        // range `bytes=-N` from offset 0, so the init program asks for the tail again by
        // offsets; S3 itself answers with the tail. The range server below measures that case.)
        const tail = `bytes=${Math.max(0, size - TAIL_BYTES)}-${size - 1}`;
        for (const q of o.requests) expect([`bytes=-${TAIL_BYTES}`, tail]).toContain(q.range);
      }
    } finally {
      await o.fn.stop();
    }
  });

  test('BUDGET_EXCEEDED.declared-total-over-memory-budget, against a server with S3\'s suffix ranges: one GET per init, the last 512 KiB, no entry data', async () => {
    const c = CASES.find((k) => k.name === 'BUDGET_EXCEEDED.declared-total-over-memory-budget')!;
    const fx = fixtures.get(c.name)!;
    const m = mapZip(fx.buf);
    rangeServer.files.set(`${c.name}.zip`, fx.path);
    const o = await runE2E({ ...c, file: fx.path }, 'handler.handler');
    try {
      const served = o.requests.reduce((n, q) => n + q.bytes, 0);
      record(c, `invoke ${o.status}; snaploader ${JSON.stringify(o.lines)}; ${describeRequests(o, fx.buf.length)}; ` +
        `the entries' data is bytes 0-${m.cdOffset - 1} (declared ${fmtMiB(3 * 256 * MiB)}), the tail GET began at ${fx.buf.length - TAIL_BYTES}`);
      expect(o.status).toBe(502);
      expect(o.lines).toEqual([expect.stringMatching(/^snaploader: BUDGET_EXCEEDED: /)]);
      // One GET of the tail for each run of the init (the emulator runs it again in the invoke).
      expect(o.requests.length).toBeGreaterThanOrEqual(1);
      expect(new Set(o.requests.map((q) => q.range))).toEqual(new Set([`bytes=-${TAIL_BYTES}`]));
      expect(served).toBe(o.requests.length * TAIL_BYTES);
      expect(fx.buf.length).toBeGreaterThan(3 * TAIL_BYTES); // most of the entry data was never sent
      expect(existsSync(o.target)).toBe(false);
    } finally {
      await o.fn.stop();
    }
  });
});

describe('in the Lambda sandbox: the archives that must work load, and the handler runs', () => {
  test.each(CASES.filter((c) => codeOf(c) === 'OK').map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const o = await runE2E(c, 'absent.handler');
    try {
      const size = c.file ? statSync(fixtures.get(c.name)!.path).size : fixtures.get(c.name)!.buf.length;
      record(c, `invoke ${o.status}; snaploader ${JSON.stringify(o.lines)}; ${describeRequests(o, size)}` +
        `${c.file ? ` (served from a sparse file taking ${statSync(fixtures.get(c.name)!.path).blocks / 2} KiB on disk)` : ''}`);
      expect(o.status).toBe(200);
      expect(o.ran).toBe(true);
      expect(JSON.parse(o.body).fancy).toBe('imported');
      expect(o.lines).toHaveLength(1);
      expect(o.lines[0].slice('snaploader: '.length)).toMatch(c.reason);
      c.verify!(o.target);
      expect(readdirSync(o.parent)).toEqual(['tree']);
      if (c.file) {
        const bytes = o.requests.reduce((n, q) => n + q.bytes, 0);
        expect(bytes).toBeLessThan(2 * MiB);
      }
    } finally {
      await o.fn.stop();
    }
  });
});
