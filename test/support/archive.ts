import { execFileSync } from 'node:child_process';
import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { ROOT } from './paths';

/** A directory tree to zip: path -> content, or { symlink: target }. */
export type TreeSpec = Record<string, string | Buffer | { symlink: string } | { mode: number; content: string | Buffer }>;

export function writeTree(root: string, spec: TreeSpec): void {
  for (const [rel, v] of Object.entries(spec)) {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    if (typeof v === 'string' || Buffer.isBuffer(v)) writeFileSync(p, v);
    else if ('symlink' in v) symlinkSync(v.symlink, p);
    else writeFileSync(p, v.content, { mode: v.mode });
  }
}

/** Zips `dir` with Info-ZIP's zip, as users do: symlinks stored as links (-y); -fz forces zip64 records. */
export function zipDir(dir: string, out: string, opts: { stored?: boolean; zip64?: boolean } = {}): Buffer {
  rmSync(out, { force: true });
  execFileSync('zip', ['-q', '-r', '-y', '-X', ...(opts.stored ? ['-0'] : []), ...(opts.zip64 ? ['-fz'] : []), out, '.'], { cwd: dir });
  return readFileSync(out);
}

export interface PyEntry {
  name: string;
  text?: string;
  base64?: string;
  method?: 'stored' | 'deflated' | 'bzip2' | 'lzma';
  mode?: number;
  /** Content of this many zero bytes (written in chunks), instead of text/base64. */
  zeros?: number;
  /** zlib compression level for a deflated entry. */
  level?: number;
}

/** Builds a zip in memory with CPython's zipfile (zip64 on demand, any method it knows). */
export function pyZip(entries: PyEntry[], opts: { forceZip64?: boolean; comment?: string } = {}): Buffer {
  return execFileSync('python3', [join(ROOT, 'test', 'fixtures', 'zips', 'make_zip.py')], {
    input: JSON.stringify({ entries, force_zip64: opts.forceZip64 ?? false, comment: opts.comment ?? '' }),
    maxBuffer: 1 << 30,
  });
}

/** An ArchiveSource over bytes in memory: the engine's input without a network. */
export function bufferSource(buf: Buffer, url = 's3://test/archive.zip') {
  return {
    url,
    size: buf.length,
    read: async (start: number, end: number) => Buffer.from(buf.subarray(start, end)),
    stream: async (start: number, end: number) => (async function* () {
      for (let at = start; at < end; at += 7919) yield Buffer.from(buf.subarray(at, Math.min(end, at + 7919)));
    })(),
  };
}

// ---------------------------------------------------------------------------------------
// Byte-level tools for the bad-archive corpus (test/archive-failures.test.ts): find the
// parts of a zip a real tool wrote, patch them, and write the few archives no tool makes.

export interface MappedEntry {
  name: Buffer;
  /** Offset of the central-directory header. */
  cdh: number;
  /** Offset of the local header. */
  lfh: number;
  /** Offset of the entry's data (after the local header's name and extra field). */
  dataStart: number;
  compressedSize: number;
}

export interface ZipMap {
  eocd: number;
  /** Offset of the zip64 end locator, when there is one. */
  locator: number | null;
  cdOffset: number;
  cdSize: number;
  entries: MappedEntry[];
}

/** Where everything sits in a well-formed zip (to patch it afterwards). */
export function mapZip(buf: Buffer): ZipMap {
  let eocd = -1;
  for (let i = buf.length - 22; i >= 0; i--) {
    if (buf.readUInt32LE(i) === 0x06054b50 && i + 22 + buf.readUInt16LE(i + 20) === buf.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('mapZip: no end record');
  let count = buf.readUInt16LE(eocd + 10);
  let cdSize = buf.readUInt32LE(eocd + 12);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  let locator: number | null = null;
  if (eocd >= 20 && buf.readUInt32LE(eocd - 20) === 0x07064b50) {
    locator = eocd - 20;
    const z64 = Number(buf.readBigUInt64LE(locator + 8));
    count = Number(buf.readBigUInt64LE(z64 + 32));
    cdSize = Number(buf.readBigUInt64LE(z64 + 40));
    cdOffset = Number(buf.readBigUInt64LE(z64 + 48));
  }
  const entries: MappedEntry[] = [];
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    let compressedSize = buf.readUInt32LE(p + 20);
    let lfh = buf.readUInt32LE(p + 42);
    const usize = buf.readUInt32LE(p + 24);
    const extra = buf.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
    for (let q = 0; q + 4 <= extra.length; q += 4 + extra.readUInt16LE(q + 2)) {
      if (extra.readUInt16LE(q) !== 1) continue;
      let r = q + 4;
      if (usize === 0xffffffff) r += 8;
      if (compressedSize === 0xffffffff) { compressedSize = Number(extra.readBigUInt64LE(r)); r += 8; }
      if (lfh === 0xffffffff) lfh = Number(extra.readBigUInt64LE(r));
    }
    entries.push({
      name: Buffer.from(buf.subarray(p + 46, p + 46 + nameLen)),
      cdh: p,
      lfh,
      dataStart: lfh + 30 + buf.readUInt16LE(lfh + 26) + buf.readUInt16LE(lfh + 28),
      compressedSize,
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return { eocd, locator, cdOffset, cdSize, entries };
}

/** Renames an entry in its local and central headers (same length), for names no tool writes. */
export function patchName(buf: Buffer, from: string, to: Buffer): Buffer {
  const f = Buffer.from(from);
  if (f.length !== to.length) throw new Error('patchName: names must have the same length');
  const hits = mapZip(buf).entries.filter((e) => e.name.equals(f));
  if (hits.length === 0) throw new Error(`patchName: no entry ${from}`);
  for (const e of hits) {
    to.copy(buf, e.lfh + 30);
    to.copy(buf, e.cdh + 46);
  }
  return buf;
}

/** An entry for rawZip: declared values are written as given, so they can lie. */
export interface RawEntry {
  name: string | Buffer;
  /** The bytes as they sit in the archive (already deflated for method 8). */
  data?: Buffer;
  /** Instead of data: this many zero bytes, left as a hole when written to a file. */
  hole?: number;
  method?: number;
  crc32?: number;
  compressedSize?: number;
  uncompressedSize?: number;
  /** Unix mode with type bits (default a 0644 regular file). */
  mode?: number;
}

export interface RawZip {
  size: number;
  /** The bytes to write, at their offsets; everything else is zeros (a hole in a file). */
  pieces: { at: number; buf: Buffer }[];
}

const U32 = 0xffffffff;

function crcOfZeros(n: number): number {
  const block = Buffer.alloc(Math.min(n, 1 << 20));
  let c = 0;
  for (let left = n; left > 0; left -= block.length) c = crc32(left >= block.length ? block : block.subarray(0, left), c);
  return c;
}

/**
 * Writes a zip by hand, with zip64 records wherever a value needs them (sizes or offsets of
 * 4 GiB and more). For the archives no tool writes: a 4.5 GiB stored entry that is a hole.
 */
export function rawZip(entries: RawEntry[], opts: { startAt?: number } = {}): RawZip {
  const pieces: { at: number; buf: Buffer }[] = [];
  const central: Buffer[] = [];
  let at = opts.startAt ?? 0;
  for (const e of entries) {
    const name = Buffer.isBuffer(e.name) ? e.name : Buffer.from(e.name);
    const length = e.data ? e.data.length : e.hole ?? 0;
    const csize = e.compressedSize ?? length;
    const usize = e.uncompressedSize ?? length;
    const crc = e.crc32 ?? (e.data ? crc32(e.data) : crcOfZeros(length));
    const big = csize >= U32 || usize >= U32;
    const local = Buffer.alloc(30 + name.length + (big ? 20 : 0));
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(big ? 45 : 20, 4);
    local.writeUInt16LE(e.method ?? 0, 8);
    local.writeUInt16LE(0x21, 12); // 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(big ? U32 : csize, 18);
    local.writeUInt32LE(big ? U32 : usize, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(big ? 20 : 0, 28);
    name.copy(local, 30);
    if (big) {
      local.writeUInt16LE(1, 30 + name.length);
      local.writeUInt16LE(16, 32 + name.length);
      local.writeBigUInt64LE(BigInt(usize), 34 + name.length);
      local.writeBigUInt64LE(BigInt(csize), 42 + name.length);
    }
    pieces.push({ at, buf: local });
    if (e.data) pieces.push({ at: at + local.length, buf: e.data });
    const z64: bigint[] = [];
    if (usize >= U32) z64.push(BigInt(usize));
    if (csize >= U32) z64.push(BigInt(csize));
    if (at >= U32) z64.push(BigInt(at));
    const extraLen = z64.length ? 4 + 8 * z64.length : 0;
    const cdh = Buffer.alloc(46 + name.length + extraLen);
    cdh.writeUInt32LE(0x02014b50, 0);
    cdh.writeUInt16LE(0x031e, 4); // made by Unix, 3.0
    cdh.writeUInt16LE(z64.length ? 45 : 20, 6);
    cdh.writeUInt16LE(e.method ?? 0, 10);
    cdh.writeUInt16LE(0x21, 14);
    cdh.writeUInt32LE(crc, 16);
    cdh.writeUInt32LE(csize >= U32 ? U32 : csize, 20);
    cdh.writeUInt32LE(usize >= U32 ? U32 : usize, 24);
    cdh.writeUInt16LE(name.length, 28);
    cdh.writeUInt16LE(extraLen, 30);
    cdh.writeUInt32LE((((e.mode ?? 0o100644) & 0xffff) << 16) >>> 0, 38);
    cdh.writeUInt32LE(at >= U32 ? U32 : at, 42);
    name.copy(cdh, 46);
    if (extraLen) {
      cdh.writeUInt16LE(1, 46 + name.length);
      cdh.writeUInt16LE(8 * z64.length, 48 + name.length);
      z64.forEach((v, i) => cdh.writeBigUInt64LE(v, 50 + name.length + 8 * i));
    }
    central.push(cdh);
    at += local.length + length;
  }
  const cd = Buffer.concat(central);
  const cdOffset = at;
  pieces.push({ at: cdOffset, buf: cd });
  at += cd.length;
  const needs64 = cdOffset >= U32 || entries.length >= 0xffff;
  if (needs64) {
    const rec = Buffer.alloc(56 + 20);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(0x031e, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(entries.length), 24);
    rec.writeBigUInt64LE(BigInt(entries.length), 32);
    rec.writeBigUInt64LE(BigInt(cd.length), 40);
    rec.writeBigUInt64LE(BigInt(cdOffset), 48);
    rec.writeUInt32LE(0x07064b50, 56);
    rec.writeBigUInt64LE(BigInt(at), 64);
    rec.writeUInt32LE(1, 72);
    pieces.push({ at, buf: rec });
    at += rec.length;
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(needs64 ? 0xffff : entries.length, 8);
  eocd.writeUInt16LE(needs64 ? 0xffff : entries.length, 10);
  eocd.writeUInt32LE(needs64 ? U32 : cd.length, 12);
  eocd.writeUInt32LE(needs64 ? U32 : cdOffset, 16);
  pieces.push({ at, buf: eocd });
  return { size: at + 22, pieces };
}

/** A RawZip as one buffer (holes filled with zeros). */
export function rawZipBuffer(z: RawZip): Buffer {
  const out = Buffer.alloc(z.size);
  for (const p of z.pieces) p.buf.copy(out, p.at);
  return out;
}

/** A RawZip as a sparse file: the holes take no disk. */
export function writeSparse(z: RawZip, path: string): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, z.size);
    for (const p of z.pieces) writeSync(fd, p.buf, 0, p.buf.length, p.at);
  } finally {
    closeSync(fd);
  }
}

/** An ArchiveSource over a file (sparse ones too), counting what is read. */
export function fileSource(path: string, url = 's3://test/archive.zip') {
  const fd = openSync(path, 'r');
  const size = fstatSync(fd).size;
  const reads: [number, number][] = [];
  const readAt = (start: number, end: number): Buffer => {
    const b = Buffer.alloc(end - start);
    let off = 0;
    while (off < b.length) {
      const n = readSync(fd, b, off, b.length - off, start + off);
      if (n === 0) break;
      off += n;
    }
    return b.subarray(0, off);
  };
  return {
    url,
    size,
    reads,
    bytesRead: (): number => reads.reduce((n, [s, e]) => n + e - s, 0),
    read: async (start: number, end: number) => {
      reads.push([start, end]);
      return readAt(start, end);
    },
    stream: async (start: number, end: number) => {
      reads.push([start, end]);
      return (async function* () {
        for (let p = start; p < end; p += 65536) yield readAt(p, Math.min(end, p + 65536));
      })();
    },
    close: (): void => closeSync(fd),
  };
}

/** pyZip into a file after a hole of `sparsePrefix` bytes: every offset above it (zip64 offsets for free). */
export function pyZipFile(entries: PyEntry[], out: string, sparsePrefix = 0): void {
  execFileSync('python3', [join(ROOT, 'test', 'fixtures', 'zips', 'make_zip.py')], {
    input: JSON.stringify({ entries, out, sparse_prefix: sparsePrefix }),
  });
}

/**
 * `data` as raw deflate in ONE final block with the fixed Huffman code, literals only: a
 * valid stream whose single block is as long as the data (no real compressor writes that).
 */
export function deflateOneFixedBlock(data: Buffer): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  const put = (value: number, n: number): void => {
    acc |= value << bits;
    bits += n;
    while (bits >= 8) {
      out.push(acc & 0xff);
      acc >>>= 8;
      bits -= 8;
    }
  };
  // Huffman codes go most-significant bit first.
  const putCode = (code: number, n: number): void => {
    for (let i = n - 1; i >= 0; i--) put((code >>> i) & 1, 1);
  };
  put(1, 1); // BFINAL
  put(1, 2); // BTYPE = 01, fixed Huffman
  for (const byte of data) {
    if (byte < 144) putCode(0x30 + byte, 8);
    else putCode(0x190 + byte - 144, 9);
  }
  putCode(0, 7); // end of block (256)
  if (bits > 0) out.push(acc & 0xff);
  return Buffer.from(out);
}
