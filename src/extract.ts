/**
 * Streams the planned entries out of the archive.
 *
 * - Entries that sit next to each other are fetched with one ranged GET (a group, up to the
 *   range size); a group larger than that (one big entry) is fetched as consecutive
 *   sub-ranges, a few in flight at once, so one big entry still uses several connections.
 * - The main thread only moves bytes: inflating, writing and creating files run on libuv's
 *   threadpool (one-shot inflate for entries up to ONE_SHOT_MAX, a stream with large chunks
 *   for bigger ones), so every core works.
 * - Every entry's local header is checked against the central directory, and its size and
 *   CRC-32 are verified; an entry that inflates past its declared size is stopped at once.
 * - Memory is bounded whatever the archive size: buffered archive bytes are capped by a
 *   byte budget, inflated outputs by ONE_SHOT_MAX x jobs in flight.
 */
import { close, write } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createInflateRaw, crc32, inflateRaw } from 'node:zlib';
import { ArchiveError, ExtractError, SourceError } from './errors';
import type { PlannedFile } from './plan';
import type { ArchiveSource } from './s3-source';
import { describeName, type ZipEntry } from './zip-directory';

const LOCAL_SIG = 0x04034b50;
const LOCAL_HEADER = 30;
const MAX_SYMLINK_TARGET = 4096;
/** Entries up to this size are inflated in one threadpool job; larger ones are streamed. */
const ONE_SHOT_MAX = 8 * 1024 * 1024;
/** Inflate output chunk for streamed entries: large, so few round trips to the threadpool. */
const STREAM_CHUNK = 1024 * 1024;
/** Entry jobs (inflate + write) a group may have running while its cursor reads ahead. */
const JOBS_PER_GROUP = 4;
/** Inflated bytes held in memory at once by one-shot jobs, across all groups. */
const OUTPUT_BUDGET = 16 * 1024 * 1024;

const inflateRawAsync = promisify(inflateRaw) as (buf: Buffer, opts: { maxOutputLength: number; chunkSize: number }) => Promise<Buffer>;
const writeAsync = (fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> =>
  new Promise((resolve, reject) => write(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
const closeAsync = promisify(close);

/** Where an entry's bytes go: a file descriptor (written at offsets from 0) or, for symlinks, memory. */
export interface Destinations {
  open(file: PlannedFile): number | Promise<number>;
  symlink(file: PlannedFile, target: Buffer): void;
}

export interface Group {
  start: number;
  end: number;
  files: { file: PlannedFile; spanEnd: number }[];
}

export interface ExtractOptions {
  /** Groups in flight. */
  concurrency: number;
  /** Sees every byte read, with its offset (SNAPLOADER_SHA256); then every group is read to its end. */
  observe?: (offset: number, buf: Buffer) => void;
  /** Largest ranged GET. */
  rangeSize: number;
  /** Most archive bytes held in memory at once, across all groups. */
  bufferBudget: number;
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

/**
 * Caps the archive bytes held in memory; a request larger than the cap waits until it is
 * alone. To stay deadlock-free, a reader blocks in acquire() only while it holds nothing;
 * read-ahead uses tryAcquire() and simply does not happen when the budget is spent.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiters: { n: number; resolve: () => void }[] = [];

  constructor(private readonly max: number) {}

  async acquire(n: number): Promise<void> {
    if (this.tryAcquire(n)) return;
    await new Promise<void>((resolve) => this.waiters.push({ n, resolve }));
  }

  tryAcquire(n: number): boolean {
    if (this.waiters.length > 0 || !this.fits(n)) return false;
    this.used += n;
    return true;
  }

  release(n: number): void {
    this.used -= n;
    while (this.waiters.length > 0 && this.fits(this.waiters[0].n)) {
      const w = this.waiters.shift()!;
      this.used += w.n;
      w.resolve();
    }
  }

  private fits(n: number): boolean {
    return this.used === 0 || this.used + n <= this.max;
  }
}

/**
 * The bytes [start, end) as consecutive sub-ranges of at most `rangeSize`, up to `ahead`
 * requests in flight, each fully buffered and counted against the budget until consumed.
 */
async function* rangeChunks(source: ArchiveSource, start: number, end: number, rangeSize: number, ahead: number, budget: ByteBudget,
  observe?: (offset: number, buf: Buffer) => void): AsyncGenerator<Buffer> {
  const pending: { size: number; data: Promise<Buffer> }[] = [];
  let next = start;
  const launch = (): void => {
    const s = next;
    const e = Math.min(end, s + rangeSize);
    next = e;
    const data = observe ? source.read(s, e).then((b) => (observe(s, b), b)) : source.read(s, e);
    data.catch(() => undefined); // observed when consumed; never an unhandled rejection
    pending.push({ size: e - s, data });
  };
  const fill = async (): Promise<void> => {
    if (pending.length === 0 && next < end) {
      await budget.acquire(Math.min(end, next + rangeSize) - next); // holding nothing: may wait
      launch();
    }
    while (pending.length < ahead && next < end && budget.tryAcquire(Math.min(end, next + rangeSize) - next)) launch();
  };
  if (ahead <= 1) {
    // One range: pass the response through as it arrives, nothing buffered beyond the socket.
    let at = start;
    for await (const chunk of await source.stream(start, end)) {
      observe?.(at, chunk);
      at += chunk.length;
      yield chunk;
    }
    return;
  }
  try {
    await fill();
    while (pending.length > 0) {
      const { size, data } = pending[0];
      const buf = await data;
      pending.shift();
      budget.release(size);
      await fill();
      yield buf;
    }
  } finally {
    for (const p of pending) budget.release(p.size);
  }
}

/** Reads exactly what it is asked for from a stream of chunks. */
class Cursor {
  private chunk: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;

  constructor(body: AsyncIterable<Buffer>, public pos: number, private readonly end: number, private readonly url: string) {
    this.it = body[Symbol.asyncIterator]();
  }

  /** The next response chunk, or a clear error if the response ended early. */
  private async nextChunk(at: number): Promise<Buffer> {
    const r = await this.it.next();
    if (r.done) throw new SourceError('SOURCE_ERROR', `${this.url}: the response ended at offset ${at}, before ${this.end}`);
    return r.value;
  }

  /** Called only once the current chunk is used up (skipTo and take empty it first). */
  private async more(): Promise<void> {
    this.chunk = await this.nextChunk(this.pos);
  }

  async read(n: number): Promise<Buffer> {
    if (this.chunk.length < n) {
      // Gather, then copy once: concatenating chunk by chunk would be quadratic.
      const parts = [this.chunk];
      let have = this.chunk.length;
      while (have < n) {
        const chunk = await this.nextChunk(this.pos + have);
        parts.push(chunk);
        have += chunk.length;
      }
      this.chunk = Buffer.concat(parts, have);
    }
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

function tooLarge(entry: ZipEntry): ArchiveError {
  return new ArchiveError('ENTRY_SIZE_MISMATCH', `entry ${describeName(entry.name)} inflates to more than its declared ${entry.uncompressedSize} bytes`);
}

function writeFailed(entry: ZipEntry, err: unknown): ExtractError {
  const e = err as NodeJS.ErrnoException;
  return new ExtractError('WRITE_FAILED', `writing ${describeName(entry.name)} failed: ${e.message}${e.code === 'ENOSPC' ? ' (/tmp is full: raise the function\'s ephemeral storage or lower SNAPLOADER_TMP_BUDGET)' : ''}`);
}

function corrupt(entry: ZipEntry, err: unknown): ArchiveError {
  return new ArchiveError('ZIP_MALFORMED', `entry ${describeName(entry.name)}: its deflate data is corrupt (${(err as Error).message})`);
}

/** Writes chunks at increasing offsets, counting bytes and CRC-32, refusing to grow past the declared size. */
class CheckedSink extends Writable {
  written = 0;
  crc = 0;

  constructor(private readonly fd: number, private readonly entry: ZipEntry) {
    super({ highWaterMark: 4 * STREAM_CHUNK });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.written + chunk.length > this.entry.uncompressedSize) {
      cb(tooLarge(this.entry));
      return;
    }
    const at = this.written;
    this.written += chunk.length;
    this.crc = crc32(chunk, this.crc);
    writeAll(this.fd, chunk, at).then(() => cb(), (err) => cb(writeFailed(this.entry, err)));
  }
}

async function writeAll(fd: number, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) off += await writeAsync(fd, buf, off, buf.length - off, position + off);
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

/** Inflates (or copies) a whole entry held in memory. */
async function inflateWhole(entry: ZipEntry, data: Buffer): Promise<Buffer> {
  if (entry.method === 0) return data;
  try {
    // One output chunk the size of the entry: one threadpool job, not one per 16 KiB.
    const size = Math.max(64, entry.uncompressedSize + 1);
    return await inflateRawAsync(data, { maxOutputLength: size, chunkSize: size });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(entry);
    throw corrupt(entry, err);
  }
}

/** One entry from compressed bytes in memory: inflate, check, write, close. */
async function finishWhole(file: PlannedFile, data: Buffer, dest: Destinations): Promise<number> {
  const entry = file.entry;
  const out = await inflateWhole(entry, data);
  if (out.length > entry.uncompressedSize) throw tooLarge(entry);
  checkSizeAndCrc(entry, out.length, crc32(out));
  if (file.symlink) {
    dest.symlink(file, out);
    return 0;
  }
  const fd = await dest.open(file);
  try {
    await writeAll(fd, out, 0).catch((err) => {
      throw writeFailed(entry, err);
    });
  } finally {
    await closeAsync(fd);
  }
  return out.length;
}

/** One large entry streamed through an inflater straight to its file. */
async function streamEntry(cursor: Cursor, file: PlannedFile, dest: Destinations): Promise<number> {
  const entry = file.entry;
  const data = Readable.from(cursor.take(entry.compressedSize), { objectMode: false });
  const fd = await dest.open(file);
  try {
    const sink = new CheckedSink(fd, entry);
    try {
      await (entry.method === 8 ? pipeline(data, createInflateRaw({ chunkSize: STREAM_CHUNK }), sink) : pipeline(data, sink));
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('Z_')) throw corrupt(entry, err);
      throw err;
    }
    checkSizeAndCrc(entry, sink.written, sink.crc);
    return sink.written;
  } finally {
    await closeAsync(fd);
  }
}

/** Reads the local header at the cursor and checks it against the central directory; returns where the data starts. */
async function readLocalHeader(cursor: Cursor, entry: ZipEntry, spanEnd: number): Promise<void> {
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
}

interface Budgets {
  input: ByteBudget;
  output: ByteBudget;
}

async function extractGroup(source: ArchiveSource, group: Group, opts: ExtractOptions, budgets: Budgets, dest: Destinations): Promise<number> {
  const ahead = group.end - group.start > opts.rangeSize ? 3 : 1;
  const cursor = new Cursor(rangeChunks(source, group.start, group.end, opts.rangeSize, ahead, budgets.input, opts.observe), group.start, group.end, source.url);
  const jobs = new Set<Promise<number>>();
  let total = 0;
  let failed: unknown = null;
  const track = (job: Promise<number>): void => {
    const p = job.then((n) => {
      total += n;
      return n;
    }, (err) => {
      failed ??= err;
      return 0;
    });
    jobs.add(p);
    void p.finally(() => jobs.delete(p));
  };
  try {
    for (const { file, spanEnd } of group.files) {
      if (failed !== null) break;
      const entry = file.entry;
      if (file.symlink && (entry.uncompressedSize > MAX_SYMLINK_TARGET || entry.compressedSize > 2 * MAX_SYMLINK_TARGET)) {
        throw new ArchiveError('ENTRY_SIZE_MISMATCH', `symlink ${describeName(entry.name)} has a ${entry.uncompressedSize}-byte target (limit ${MAX_SYMLINK_TARGET})`);
      }
      await readLocalHeader(cursor, entry, spanEnd);
      if (file.symlink || (entry.uncompressedSize <= ONE_SHOT_MAX && entry.compressedSize <= opts.rangeSize)) {
        // Either a fresh buffer (gathered across chunks) or a view into one response chunk.
        const data = await cursor.read(entry.compressedSize);
        while (jobs.size >= JOBS_PER_GROUP) await Promise.race(jobs);
        const outBytes = entry.uncompressedSize;
        await budgets.output.acquire(outBytes);
        track(finishWhole(file, data, dest).finally(() => budgets.output.release(outBytes)));
      } else {
        await Promise.all(jobs);
        track(streamEntry(cursor, file, dest));
        await Promise.all(jobs);
      }
    }
    if (opts.observe && failed === null) await cursor.skipTo(group.end); // every byte is hashed
  } catch (err) {
    failed ??= err;
  } finally {
    // Nothing may still be writing when the caller cleans up after a failure.
    await Promise.all(jobs);
    await cursor.close();
  }
  if (failed !== null) throw failed;
  return total;
}

/** Extracts every group, `concurrency` at a time; returns the bytes written. */
export async function extractGroups(source: ArchiveSource, groups: Group[], opts: ExtractOptions, dest: Destinations): Promise<number> {
  const budgets = { input: new ByteBudget(opts.bufferBudget), output: new ByteBudget(OUTPUT_BUDGET) };
  // In offset order. (Largest-first dispatch was tried: it did not measurably help on the
  // benchmark corpus, and its request order broke the replaced-object scenarios' expectations.)
  const order = groups;
  let next = 0;
  let total = 0;
  let failed: unknown = null;
  const worker = async (): Promise<void> => {
    while (failed === null && next < order.length) {
      const written = await extractGroup(source, order[next++], opts, budgets, dest);
      total += written;
    }
  };
  const workers = Array.from({ length: Math.min(opts.concurrency, groups.length) }, () => worker().catch((err) => {
    failed ??= err;
  }));
  await Promise.all(workers);
  if (failed !== null) throw failed;
  return total;
}
