/**
 * Reads a zip's end record(s) and central directory (APPNOTE 6.3.10, sections 4.3.12-4.3.16
 * and 4.5.3), strictly: every offset is checked against the archive's bounds before use.
 * Names stay bytes; they are checked separately (entry-names.ts).
 */
import { ArchiveError } from '../errors';

export interface ZipEntry {
  /** Index in the central directory, for messages. */
  index: number;
  name: Buffer;
  flags: number;
  method: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  /** Unix mode bits when the entry was made on Unix (upper 16 bits of external attributes), else 0. */
  unixMode: number;
  isDirectory: boolean;
  isSymlink: boolean;
}

export interface CentralDirectory {
  entries: ZipEntry[];
  /** Where the central directory starts: no entry's data may reach past it. */
  directoryOffset: number;
}

/** Reads bytes [start, end) of the archive, into a buffer the caller may keep (entry names are views of it). */
export type ReadRange = (start: number, end: number) => Promise<Buffer>;

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CDH_SIG = 0x02014b50;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_MIN = 56;
const MAX_COMMENT = 0xffff;
/** How much of the end to read first: the end records, and often the whole directory. */
export const TAIL_BYTES = 512 * 1024;
const MAX_DIRECTORY_BYTES = 256 * 1024 * 1024;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;

function malformed(message: string): ArchiveError {
  return new ArchiveError('ZIP_MALFORMED', message);
}

function unsupported(message: string): ArchiveError {
  return new ArchiveError('ZIP_UNSUPPORTED', message);
}

/** A Buffer that remembers where it sits in the archive. */
class Window {
  constructor(readonly buf: Buffer, readonly offset: number) {}
  has(start: number, length: number): boolean {
    return start >= this.offset && start + length <= this.offset + this.buf.length;
  }
  slice(start: number, length: number): Buffer {
    return this.buf.subarray(start - this.offset, start - this.offset + length);
  }
}

function findEndRecord(tail: Window, archiveSize: number): number {
  // Scan backwards: the record is 22 bytes plus a comment that must end exactly at the end.
  const buf = tail.buf;
  for (let i = buf.length - EOCD_SIZE; i >= 0 && i >= buf.length - EOCD_SIZE - MAX_COMMENT; i--) {
    if (buf.readUInt32LE(i) === EOCD_SIG && i + EOCD_SIZE + buf.readUInt16LE(i + 20) === buf.length) return tail.offset + i;
  }
  throw new ArchiveError('NOT_A_ZIP', archiveSize === 0
    ? 'the object is empty, not a zip archive'
    : `not a zip archive: no end-of-central-directory record in the last ${buf.length} bytes`);
}

async function readWindow(read: ReadRange, tail: Window, start: number, length: number): Promise<Buffer> {
  if (tail.has(start, length)) return tail.slice(start, length);
  const buf = await read(start, start + length);
  if (buf.length !== length) throw malformed(`short read at offset ${start}: expected ${length} bytes, got ${buf.length}`);
  return buf;
}

export async function readCentralDirectory(archiveSize: number, tailBuf: Buffer, read: ReadRange): Promise<CentralDirectory> {
  const tail = new Window(tailBuf, archiveSize - tailBuf.length);
  if (archiveSize < EOCD_SIZE) throw new ArchiveError('NOT_A_ZIP', `not a zip archive: only ${archiveSize} bytes`);
  const eocdAt = findEndRecord(tail, archiveSize);
  const eocd = tail.slice(eocdAt, EOCD_SIZE);
  let disk = eocd.readUInt16LE(4);
  let cdDisk = eocd.readUInt16LE(6);
  let countThisDisk = eocd.readUInt16LE(8);
  let count = eocd.readUInt16LE(10);
  let cdSize = eocd.readUInt32LE(12);
  let cdOffset = eocd.readUInt32LE(16);
  let directoryEnd = eocdAt;

  const locatorAt = eocdAt - ZIP64_LOCATOR_SIZE;
  const locator = locatorAt >= 0 ? await readWindow(read, tail, locatorAt, ZIP64_LOCATOR_SIZE) : null;
  if (locator && locator.readUInt32LE(0) === ZIP64_LOCATOR_SIG) {
    if (locator.readUInt32LE(16) > 1) throw unsupported('multi-disk (spanned or split) archives are not supported');
    const z64At = Number(locator.readBigUInt64LE(8));
    if (z64At + ZIP64_EOCD_MIN > locatorAt) throw malformed(`zip64 end record offset ${z64At} is out of bounds`);
    const z64 = await readWindow(read, tail, z64At, ZIP64_EOCD_MIN);
    if (z64.readUInt32LE(0) !== ZIP64_EOCD_SIG) throw malformed(`no zip64 end record at offset ${z64At}`);
    disk = z64.readUInt32LE(16);
    cdDisk = z64.readUInt32LE(20);
    countThisDisk = Number(z64.readBigUInt64LE(24));
    count = Number(z64.readBigUInt64LE(32));
    cdSize = Number(z64.readBigUInt64LE(40));
    cdOffset = Number(z64.readBigUInt64LE(48));
    directoryEnd = z64At;
  } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    throw malformed('end record needs zip64 values but there is no zip64 locator');
  }
  if (disk !== 0 || cdDisk !== 0 || countThisDisk !== count) {
    throw unsupported('multi-disk (spanned or split) archives are not supported: re-create it as one file');
  }
  if (!Number.isSafeInteger(cdOffset) || !Number.isSafeInteger(cdSize) || cdOffset + cdSize > directoryEnd) {
    throw malformed(`central directory (offset ${cdOffset}, ${cdSize} bytes) runs past its end record at ${directoryEnd}`);
  }
  if (cdOffset + cdSize !== directoryEnd) {
    // A zip's directory ends where its end records begin. A gap means bytes were added or cut
    // (a self-extractor stub, concatenated archives, or a cut that left an embedded zip's end
    // record last), and every offset in the directory would be off by the difference.
    throw malformed(`central directory (offset ${cdOffset}, ${cdSize} bytes) ends at ${cdOffset + cdSize}, not at its end record at ${directoryEnd}: ` +
      'bytes were added to or cut from the archive (data prepended, archives concatenated, or a truncated upload); re-create it with zip -r');
  }
  if (cdSize > MAX_DIRECTORY_BYTES) throw unsupported(`central directory of ${cdSize} bytes is over the ${MAX_DIRECTORY_BYTES}-byte limit`);
  if (count > cdSize / 46) throw malformed(`end record claims ${count} entries, more than a ${cdSize}-byte directory can hold`);
  const cd = await readWindow(read, tail, cdOffset, cdSize);
  return { entries: parseEntries(cd, count, cdOffset), directoryOffset: cdOffset };
}

function parseEntries(cd: Buffer, count: number, cdOffset: number): ZipEntry[] {
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let index = 0; index < count; index++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CDH_SIG) {
      throw malformed(`central directory entry ${index} at offset ${cdOffset + p} is missing or truncated`);
    }
    const madeBy = cd.readUInt16LE(p + 4);
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc32 = cd.readUInt32LE(p + 16);
    let compressedSize = cd.readUInt32LE(p + 20);
    let uncompressedSize = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const diskStart = cd.readUInt16LE(p + 34);
    const external = cd.readUInt32LE(p + 38);
    let localHeaderOffset = cd.readUInt32LE(p + 42);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cd.length) throw malformed(`central directory entry ${index} runs past the directory`);
    // A view, not a copy: the directory's bytes are the caller's (ReadRange) and stay as they are.
    const name = cd.subarray(p + 46, p + 46 + nameLen);

    if (uncompressedSize === 0xffffffff || compressedSize === 0xffffffff || localHeaderOffset === 0xffffffff || diskStart === 0xffff) {
      const z = findExtra(cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen), 0x0001);
      if (!z) throw malformed(`entry ${describeName(name)} needs a zip64 extra field but has none`);
      let q = 0;
      const next = (): number => {
        if (q + 8 > z.length) throw malformed(`entry ${describeName(name)} has a short zip64 extra field`);
        const v = Number(z.readBigUInt64LE(q));
        q += 8;
        return v;
      };
      if (uncompressedSize === 0xffffffff) uncompressedSize = next();
      if (compressedSize === 0xffffffff) compressedSize = next();
      if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
      if (diskStart === 0xffff) {
        if (q + 4 > z.length) throw malformed(`entry ${describeName(name)} has a short zip64 extra field`);
        const disk = z.readUInt32LE(q);
        if (disk !== 0) throw unsupported(`entry ${describeName(name)} starts on disk ${disk}: multi-disk archives are not supported`);
      }
    } else if (diskStart !== 0) {
      throw unsupported(`entry ${describeName(name)} starts on disk ${diskStart}: multi-disk archives are not supported`);
    }
    if (!Number.isSafeInteger(uncompressedSize) || !Number.isSafeInteger(compressedSize)) {
      throw malformed(`entry ${describeName(name)} declares a size over 2^53 bytes (${uncompressedSize} uncompressed, ${compressedSize} compressed)`);
    }
    if (!Number.isSafeInteger(localHeaderOffset) || localHeaderOffset + 30 > cdOffset) {
      throw malformed(`entry ${describeName(name)} has a local header offset (${localHeaderOffset}) outside the archive data`);
    }
    const unixMode = madeBy >> 8 === 3 ? external >>> 16 : 0;
    const nameIsDir = name.length > 0 && name[name.length - 1] === 0x2f;
    entries.push({
      index,
      name,
      flags,
      method,
      crc32,
      compressedSize,
      uncompressedSize,
      localHeaderOffset,
      unixMode,
      isDirectory: nameIsDir || (unixMode & S_IFMT) === S_IFDIR || (madeBy >> 8 === 0 && (external & 0x10) !== 0),
      isSymlink: !nameIsDir && (unixMode & S_IFMT) === S_IFLNK,
    });
    p = end;
  }
  if (p !== cd.length) {
    // More directory than entries: the count is wrong, and entries past it would be silently
    // dropped (a different file list than other unzip tools show).
    throw malformed(`end record counts ${count} entries but the central directory has ${cd.length - p} more bytes after them`);
  }
  return entries;
}

function findExtra(extra: Buffer, id: number): Buffer | null {
  let p = 0;
  while (p + 4 <= extra.length) {
    const hid = extra.readUInt16LE(p);
    const size = extra.readUInt16LE(p + 2);
    if (p + 4 + size > extra.length) return null;
    if (hid === id) return extra.subarray(p + 4, p + 4 + size);
    p += 4 + size;
  }
  return null;
}

/** A name for messages: printable, quoted, cut short. */
export function describeName(name: Buffer): string {
  const s = name.toString('utf8').replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);
}
