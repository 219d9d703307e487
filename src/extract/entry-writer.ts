/**
 * Writes one entry to its destination. The main thread only moves bytes: inflating,
 * checksumming, writing and closing run on other threads. An entry whose compressed bytes are
 * in memory is one threadpool job of the native extractor (gather, libdeflate, CRC-32,
 * pwrite, close); a large entry is inflated, or checksummed and written if stored, by a native
 * thread of its own as its bytes arrive. Sizes and CRC-32s are verified,
 * and an entry that inflates past its declared size is stopped at once.
 */
import { close } from 'node:fs';
import { promisify } from 'node:util';
import type * as Zlib from 'node:zlib';
import { crc32, EntryStream, writeEntry } from '../native';
import type { PlannedFile } from '../plan';
import { giveBack, giveBackAll } from '../slabs';
import type { ZipEntry } from '../zip/directory';
import type { Cursor } from './cursor';
import { checkSizeAndCrc, corrupt, nativeFailed, tooLarge } from './entry-checks';
import type { FileCreator } from './file-batch';

/** The longest symlink target an archive may hold. */
export const MAX_SYMLINK_TARGET = 4096;
const closeAsync = promisify(close);

/**
 * Where an entry's bytes go: a file descriptor (written at offsets from 0), a small file of the
 * tree created by the native job itself (FileCreator), or, for symlinks, memory.
 */
export interface Destinations extends FileCreator {
  /**
   * Settles once every destination exists (the tree's directories, the memfds). The ranged GETs
   * start before it does; no entry is written until it has resolved, and a rejection fails the
   * extraction with its error. Unset: they exist already.
   */
  ready?: Promise<void>;
  open(file: PlannedFile): number | Promise<number>;
  symlink(file: PlannedFile, target: Buffer): void;
}

/** A symlink's target (at most MAX_SYMLINK_TARGET bytes), inflated on the main thread. */
function symlinkTarget(entry: ZipEntry, parts: Buffer[]): Buffer {
  const data = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  let out = data;
  if (entry.method === 8) {
    try {
      // node:zlib (~2 ms to load) only for an archive with a deflated symlink.
      out = (require('node:zlib') as typeof Zlib).inflateRawSync(data, { maxOutputLength: MAX_SYMLINK_TARGET + 1 });
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(entry);
      throw corrupt(entry, err);
    }
  }
  if (out.length > entry.uncompressedSize) throw tooLarge(entry);
  checkSizeAndCrc(entry, out.length, crc32(out, 0));
  return out;
}

/** One entry from compressed bytes in memory: one native job inflates, checks, writes and closes. */
export async function finishWhole(file: PlannedFile, parts: Buffer[], dest: Destinations): Promise<number> {
  const entry = file.entry;
  if (file.symlink) {
    dest.symlink(file, symlinkTarget(entry, parts));
    return 0;
  }
  let r;
  try {
    const fd = await dest.open(file);
    r = await writeEntry(fd, parts, entry.method === 8 ? 8 : 0, entry.uncompressedSize);
  } finally {
    giveBackAll(parts); // the job is complete (or never started)
  }
  if (r.status !== 'ok') throw nativeFailed(entry, r);
  checkSizeAndCrc(entry, r.written, r.crc);
  return r.written;
}

/**
 * One large entry streamed straight to its file by a native stream (a thread of its own) as its
 * bytes come: inflated, or checksummed and written if stored.
 */
export async function streamEntry(cursor: Cursor, file: PlannedFile, dest: Destinations): Promise<number> {
  const entry = file.entry;
  const fd = await dest.open(file);
  try {
    const stream = new EntryStream(fd, entry.method === 8 ? 8 : 0, entry.uncompressedSize, entry.compressedSize);
    try {
      for await (const piece of cursor.take(entry.compressedSize)) {
        const fed = stream.feed(piece); // copied in before feed returns
        giveBack(piece);
        await fed;
        if (stream.failed) break; // reported below; the rest of the entry need not be fetched
      }
    } catch (err) {
      stream.abort();
      await stream.done(); // the thread must be off fd before it is closed
      throw err;
    }
    const r = await stream.done();
    if (r.status !== 'ok') throw nativeFailed(entry, r);
    checkSizeAndCrc(entry, r.written, r.crc);
    return r.written;
  } finally {
    await closeAsync(fd);
  }
}
