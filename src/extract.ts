/**
 * Streams the planned entries out of the archive: entries that sit next to each other are
 * fetched with one ranged GET (up to the range size), several ranges are in flight at once,
 * and each entry is inflated and written as it arrives, with its size and CRC-32 checked.
 * Memory stays bounded by (ranges in flight) x (stream buffers), whatever the archive size.
 */
import { closeSync, writeSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInflateRaw, crc32 } from 'node:zlib';
import { ArchiveError, ExtractError, SourceError } from './errors';
import type { PlannedFile } from './plan';
import type { ArchiveSource } from './s3-source';
import { describeName, type ZipEntry } from './zip-directory';

const LOCAL_SIG = 0x04034b50;
const LOCAL_HEADER = 30;
const MAX_SYMLINK_TARGET = 4096;

/** Where an entry's bytes go: a file descriptor (written at offsets from 0) or, for symlinks, memory. */
export interface Destinations {
  open(file: PlannedFile): number;
  symlink(file: PlannedFile, target: Buffer): void;
}

export interface Group {
  start: number;
  end: number;
  files: { file: PlannedFile; spanEnd: number }[];
}

/**
 * Groups entries into ranges. Each entry's span runs from its local header to the next
 * local header in the archive (or the central directory): its data must lie inside it.
 */
export function groupRanges(files: PlannedFile[], allEntries: ZipEntry[], directoryOffset: number, rangeSize: number, maxGap: number): Group[] {
  const offsets = [...new Set(allEntries.map((e) => e.localHeaderOffset))].sort((a, b) => a - b);
  if (offsets.length !== allEntries.length) {
    const seen = new Map<number, ZipEntry>();
    for (const e of allEntries) {
      const other = seen.get(e.localHeaderOffset);
      if (other) {
        throw new ArchiveError('ZIP_MALFORMED', `entries ${describeName(other.name)} and ${describeName(e.name)} share their data at offset ${e.localHeaderOffset} (overlapping entries, as in a zip bomb)`);
      }
      seen.set(e.localHeaderOffset, e);
    }
  }
  const nextOffset = new Map<number, number>();
  for (let i = 0; i < offsets.length; i++) nextOffset.set(offsets[i], i + 1 < offsets.length ? offsets[i + 1] : directoryOffset);
  const sorted = [...files].sort((a, b) => a.entry.localHeaderOffset - b.entry.localHeaderOffset);
  const groups: Group[] = [];
  let current: Group | null = null;
  for (const file of sorted) {
    const start = file.entry.localHeaderOffset;
    const spanEnd = nextOffset.get(start)!;
    if (spanEnd - start < LOCAL_HEADER + file.entry.compressedSize) {
      throw new ArchiveError('ZIP_MALFORMED', `entry ${describeName(file.entry.name)} declares ${file.entry.compressedSize} compressed bytes, more than the ${spanEnd - start} bytes before the next entry (overlapping or truncated entries)`);
    }
    if (current && start - current.end <= maxGap && spanEnd - current.start <= rangeSize) {
      current.end = spanEnd;
      current.files.push({ file, spanEnd });
    } else {
      current = { start, end: spanEnd, files: [{ file, spanEnd }] };
      groups.push(current);
    }
  }
  return groups;
}

/** Reads exactly what it is asked for from a stream of chunks. */
class Cursor {
  private chunk: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;

  constructor(body: AsyncIterable<Buffer>, public pos: number, private readonly end: number, private readonly url: string) {
    this.it = body[Symbol.asyncIterator]();
  }

  private async more(): Promise<void> {
    const r = await this.it.next();
    if (r.done) {
      throw new SourceError('SOURCE_ERROR', `${this.url}: the response ended at offset ${this.pos + this.chunk.length}, before ${this.end}`);
    }
    this.chunk = this.chunk.length === 0 ? r.value : Buffer.concat([this.chunk, r.value]);
  }

  async read(n: number): Promise<Buffer> {
    while (this.chunk.length < n) await this.more();
    const out = this.chunk.subarray(0, n);
    this.chunk = this.chunk.subarray(n);
    this.pos += n;
    return out;
  }

  async skipTo(offset: number): Promise<void> {
    while (this.pos + this.chunk.length < offset) {
      this.pos += this.chunk.length;
      this.chunk = Buffer.alloc(0);
      await this.more();
    }
    this.chunk = this.chunk.subarray(offset - this.pos);
    this.pos = offset;
  }

  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.chunk.length === 0) await this.more();
      const piece = this.chunk.subarray(0, Math.min(left, this.chunk.length));
      this.chunk = this.chunk.subarray(piece.length);
      this.pos += piece.length;
      left -= piece.length;
      yield piece;
    }
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}

/** Writes chunks at increasing offsets, counting bytes and CRC-32, refusing to grow past the declared size. */
class CheckedSink extends Writable {
  written = 0;
  crc = 0;

  constructor(private readonly fd: number, private readonly entry: ZipEntry) {
    super({ highWaterMark: 1 << 20 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.written + chunk.length > this.entry.uncompressedSize) {
      cb(new ArchiveError('ENTRY_SIZE_MISMATCH', `entry ${describeName(this.entry.name)} inflates to more than its declared ${this.entry.uncompressedSize} bytes`));
      return;
    }
    try {
      let off = 0;
      while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off, this.written + off);
    } catch (err) {
      cb(new ExtractError('WRITE_FAILED', `writing ${describeName(this.entry.name)} failed: ${(err as Error).message}${(err as NodeJS.ErrnoException).code === 'ENOSPC' ? ' (/tmp is full: raise the function\'s ephemeral storage or lower SNAPLOADER_TMP_BUDGET)' : ''}`));
      return;
    }
    this.crc = crc32(chunk, this.crc);
    this.written += chunk.length;
    cb();
  }
}

async function extractFile(cursor: Cursor, file: PlannedFile, spanEnd: number, dest: Destinations): Promise<number> {
  const entry = file.entry;
  await cursor.skipTo(entry.localHeaderOffset);
  const header = await cursor.read(LOCAL_HEADER);
  if (header.readUInt32LE(0) !== LOCAL_SIG) {
    throw new ArchiveError('ZIP_MALFORMED', `entry ${describeName(entry.name)}: no local header at offset ${entry.localHeaderOffset}`);
  }
  const nameLen = header.readUInt16LE(26);
  const extraLen = header.readUInt16LE(28);
  const dataStart = entry.localHeaderOffset + LOCAL_HEADER + nameLen + extraLen;
  if (dataStart + entry.compressedSize > spanEnd) {
    throw new ArchiveError('ZIP_MALFORMED', `entry ${describeName(entry.name)}: its data runs into the next entry (overlapping entries)`);
  }
  const localName = await cursor.read(nameLen);
  if (!localName.equals(entry.name)) {
    throw new ArchiveError('ZIP_MALFORMED', `entry ${describeName(entry.name)}: the local header names it ${describeName(localName)} (a spliced or corrupt archive)`);
  }
  await cursor.skipTo(dataStart);
  const data = Readable.from(cursor.take(entry.compressedSize), { objectMode: false });

  if (file.symlink) {
    if (entry.uncompressedSize > MAX_SYMLINK_TARGET) {
      throw new ArchiveError('ENTRY_SIZE_MISMATCH', `symlink ${describeName(entry.name)} has a ${entry.uncompressedSize}-byte target (limit ${MAX_SYMLINK_TARGET})`);
    }
    const parts: Buffer[] = [];
    const sink = new Writable({ write(chunk: Buffer, _e, cb) { parts.push(chunk); cb(); } });
    await (entry.method === 8 ? pipeline(data, createInflateRaw(), sink) : pipeline(data, sink));
    const target = Buffer.concat(parts);
    checkSizeAndCrc(entry, target.length, crc32(target));
    dest.symlink(file, target);
    return 0;
  }

  const fd = dest.open(file);
  try {
    const sink = new CheckedSink(fd, entry);
    await (entry.method === 8 ? pipeline(data, createInflateRaw({ chunkSize: 256 * 1024 }), sink) : pipeline(data, sink));
    checkSizeAndCrc(entry, sink.written, sink.crc);
    return sink.written;
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('Z_')) {
      throw new ArchiveError('ZIP_MALFORMED', `entry ${describeName(entry.name)}: its deflate data is corrupt (${(err as Error).message})`);
    }
    throw err;
  } finally {
    closeSync(fd);
  }
}

function checkSizeAndCrc(entry: ZipEntry, written: number, crc: number): void {
  if (written !== entry.uncompressedSize) {
    throw new ArchiveError('ENTRY_SIZE_MISMATCH', `entry ${describeName(entry.name)}: expected ${entry.uncompressedSize} bytes, got ${written}`);
  }
  if (crc >>> 0 !== entry.crc32 >>> 0) {
    throw new ArchiveError('ENTRY_CRC_MISMATCH', `entry ${describeName(entry.name)}: CRC-32 expected ${hex(entry.crc32)}, got ${hex(crc)} (corrupt archive: upload it again)`);
  }
}

const hex = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');

/** Extracts every group, `concurrency` ranges at a time; returns the bytes written. */
export async function extractGroups(source: ArchiveSource, groups: Group[], concurrency: number, dest: Destinations): Promise<number> {
  let next = 0;
  let total = 0;
  let failed: unknown = null;
  const worker = async (): Promise<void> => {
    while (failed === null && next < groups.length) {
      const g = groups[next++];
      const cursor = new Cursor(await source.stream(g.start, g.end), g.start, g.end, source.url);
      try {
        for (const { file, spanEnd } of g.files) {
          if (failed !== null) return;
          const written = await extractFile(cursor, file, spanEnd, dest);
          total += written; // not `total += await ...`: that reads `total` before the await
        }
      } finally {
        await cursor.close();
      }
    }
  };
  const workers = Array.from({ length: Math.min(concurrency, groups.length) }, () => worker().catch((err) => {
    failed ??= err;
  }));
  await Promise.all(workers);
  if (failed !== null) throw failed;
  return total;
}
