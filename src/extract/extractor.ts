/**
 * Streams the planned entries out of the archive: the ranges (ranges.ts) `concurrency` at a
 * time, each through a cursor over its response, entry by entry.
 *
 * - Entries that sit next to each other are fetched with one ranged GET (a group, up to the
 *   range size); a group larger than that (one big entry) is fetched as consecutive
 *   sub-ranges, a few in flight at once, so one big entry still uses several connections
 *   (range-reader.ts).
 * - The main thread only moves bytes (entry-writer.ts): small files of the tree go in batches,
 *   one threadpool job of the native extractor per batch (file-batch.ts); any other entry up to
 *   ONE_SHOT_MAX is one job; a bigger one is streamed to its file as it arrives.
 * - Every entry's local header is checked against the central directory (zip/local-header.ts),
 *   and its size and CRC-32 are verified.
 * - Memory is bounded whatever the archive size: the range being consumed is read only as
 *   fast as it is used (a window, then the socket waits), read-ahead ranges are capped by a
 *   byte budget, compressed bytes handed to jobs by JOB_BUDGET (each thread inflates through
 *   a window of its own, so outputs take no memory of their own).
 */
import type { ArchiveSource } from '../archive-source';
import { ArchiveError } from '../errors';
import { describeName } from '../zip/directory';
import { readLocalHeader } from '../zip/local-header';
import { ByteBudget } from './byte-budget';
import { Cursor } from './cursor';
import { finishWhole, MAX_SYMLINK_TARGET, streamEntry, type Destinations } from './entry-writer';
import { FileBatch } from './file-batch';
import { rangeChunks } from './range-reader';
import type { Group } from './ranges';

/** Entries up to this size are inflated in one threadpool job; larger ones are streamed. */
const ONE_SHOT_MAX = 8 * 1024 * 1024;
/** Entry jobs (inflate + write) a group may have running while its cursor reads ahead. */
const JOBS_PER_GROUP = 4;
/** Compressed bytes held by queued jobs at once, across all groups. */
const JOB_BUDGET = 16 * 1024 * 1024;

export interface ExtractOptions {
  /** Groups in flight. */
  concurrency: number;
  /** Sees every byte read, with its offset (SNAPLOADER_SHA256); then every group is read to its end. */
  observe?: (offset: number, buf: Buffer) => void;
  /** Largest ranged GET. */
  rangeSize: number;
  /** Most archive bytes fetched ahead of their use at once, across all groups (besides each group's window). */
  bufferBudget: number;
}

interface Budgets {
  input: ByteBudget;
  jobs: ByteBudget;
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
  /** Starts a job once the group has room for it and the budget for what it holds. */
  const start = async (held: number, job: () => Promise<number>): Promise<void> => {
    while (jobs.size >= JOBS_PER_GROUP) await Promise.race(jobs);
    await budgets.jobs.acquire(held);
    track(job().finally(() => budgets.jobs.release(held)));
  };
  const batch = new FileBatch();
  let destinationsReady = dest.ready === undefined;
  const flush = async (): Promise<void> => {
    if (!batch.empty) await start(batch.bytes, () => batch.write(dest));
  };
  try {
    for (const { file, spanEnd } of group.files) {
      if (failed !== null) break;
      const entry = file.entry;
      if (file.symlink && (entry.uncompressedSize > MAX_SYMLINK_TARGET || entry.compressedSize > 2 * MAX_SYMLINK_TARGET)) {
        throw new ArchiveError('ENTRY_SIZE_MISMATCH', `symlink ${describeName(entry.name)} has a ${entry.uncompressedSize}-byte target (limit ${MAX_SYMLINK_TARGET})`);
      }
      await readLocalHeader(cursor, entry, spanEnd);
      if (!destinationsReady) {
        await dest.ready; // the group's GET is under way; its bytes wait in the cursor meanwhile
        destinationsReady = true;
      }
      if (file.symlink || (entry.uncompressedSize <= ONE_SHOT_MAX && entry.compressedSize <= opts.rangeSize)) {
        // Views of the response chunks the entry spans: gathered, if need be, by the job.
        const data = await cursor.readParts(entry.compressedSize);
        const where = file.symlink ? null : dest.createPath(file);
        if (where) {
          batch.add(file, where, data);
          if (batch.full) await flush();
        } else {
          await start(entry.compressedSize, () => finishWhole(file, data, dest));
        }
      } else {
        await flush();
        await Promise.all(jobs);
        track(streamEntry(cursor, file, dest));
        await Promise.all(jobs);
      }
    }
    if (failed === null) await flush();
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
  const budgets = { input: new ByteBudget(opts.bufferBudget), jobs: new ByteBudget(JOB_BUDGET) };
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
