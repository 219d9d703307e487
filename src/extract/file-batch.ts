/**
 * The tree's small files, written in batches: one native job creates, inflates (or copies),
 * writes and closes every file of a batch (writeFiles), so an archive of thousands of small
 * files costs a few handoffs between the main thread and the threadpool per range, rather
 * than two per file (one to create it, one to write it).
 */
import { writeFiles } from '../native';
import type { PlannedFile } from '../plan';
import { giveBackAll } from '../slabs';
import { checkSizeAndCrc, nativeFailed } from './entry-checks';

/** Files in one batch, at most. */
export const BATCH_FILES = 32;
/** Compressed bytes in one batch: more starts another, so the cores share the work. */
export const BATCH_BYTES = 512 * 1024;

/** Where a small file of the tree is created, and how a failure to create it reads. */
export interface FileCreator {
  /** The file's path and mode, or null if it is not a file of the tree (a memfd); symlinks are never asked about. */
  createPath(file: PlannedFile): { path: Buffer; mode: number } | null;
  createFailed(file: PlannedFile, err: NodeJS.ErrnoException): Error;
}

interface Pending {
  file: PlannedFile;
  path: Buffer;
  mode: number;
  parts: Buffer[];
}

export class FileBatch {
  private pending: Pending[] = [];
  private held = 0;

  /** Compressed bytes the batch holds. */
  get bytes(): number {
    return this.held;
  }

  get full(): boolean {
    return this.pending.length >= BATCH_FILES || this.held >= BATCH_BYTES;
  }

  get empty(): boolean {
    return this.pending.length === 0;
  }

  add(file: PlannedFile, where: { path: Buffer; mode: number }, parts: Buffer[]): void {
    this.pending.push({ file, ...where, parts });
    this.held += file.entry.compressedSize;
  }

  /** Writes the batch's files (and empties it); the bytes written, or the first file's error. */
  async write(dest: FileCreator): Promise<number> {
    const files = this.pending;
    this.pending = [];
    this.held = 0;
    let results;
    try {
      results = await writeFiles(files.map(({ file, path, mode, parts }) => ({
        path, mode, method: file.entry.method === 8 ? 8 : 0, size: file.entry.uncompressedSize, parts,
      })));
    } finally {
      // The job is complete (or never started): nothing reads the compressed bytes again.
      for (const f of files) giveBackAll(f.parts);
    }
    let total = 0;
    results.forEach((r, i) => {
      const { file } = files[i];
      if (r.status === 'open') throw dest.createFailed(file, r.error!);
      if (r.status !== 'ok') throw nativeFailed(file.entry, r);
      checkSizeAndCrc(file.entry, r.written, r.crc);
      total += r.written;
    });
    return total;
  }
}
