/**
 * The memory the archive's bytes are read into, lent out as views and reused once every view
 * has been given back.
 *
 * A connection reads into a slab (s3/http/connection.ts) and hands the body on as views of it.
 * Whoever ends up holding a view gives it back (`giveBack`) once nothing will read it again:
 * the cursor for header and skipped bytes, a native job's caller once the job is complete, a
 * stream once its bytes are copied in. A slab the connection has moved past, with every byte
 * it lent given back, goes to a free list, and the next slab comes from there.
 *
 * Why: each slab is external memory to V8, and V8 starts a full collection for about every
 * 64 MiB of it allocated. A fresh slab per 256 KiB read meant a full collection every ~100 ms
 * of a load, for a heap of about 10 MB.
 *
 * Every free slab is kept. A slab is allocated only when none is free, so the free list never
 * holds more than the most slabs in use at once (which the read-ahead and job budgets bound: a
 * slab is in use while any view of it is out): keeping them adds nothing to the program's peak
 * memory, and the program exits after the load. Dropping the ones beyond a cap (32, before)
 * did add to it: a dropped slab stays allocated until V8 collects it, while a fresh one is
 * allocated and faulted in for the next peak. On the 2 GiB corpus that put the program's peak
 * RSS anywhere from 146 to 181 MiB over five loads, and at 195 MiB in a benchmark run; kept,
 * 142 to 152 MiB.
 *
 * Safe by construction: a view is found by its ArrayBuffer, so giving back a Buffer that is not
 * a slab's (a copy, a file's bytes) does nothing, and a view never given back only keeps its
 * slab out of the free list (the garbage collector frees it, as before). Only giving back
 * bytes that are still in use would be wrong; every entry's CRC-32 is checked after its job
 * read them, so that would fail the load loudly, never silently.
 */

/** Socket reads land in slabs of this size. */
export const SLAB_SIZE = 256 * 1024;

export class Slab {
  /** Bytes lent as views and not given back yet. */
  lent = 0;
  /** The connection reads into it no more. */
  retired = false;

  constructor(readonly buf: Buffer<ArrayBuffer>) {}
}

const owners = new WeakMap<ArrayBufferLike, Slab>();
const free: Slab[] = [];
/** Slabs allocated and reused, views lent and their bytes: for the debug line after the load, and the tests. */
export const slabCounts = { allocated: 0, reused: 0, views: 0, viewBytes: 0 };

/** A slab to read into: a free one if there is one. */
export function takeSlab(): Slab {
  const reused = free.pop();
  if (reused) {
    slabCounts.reused++;
    return reused;
  }
  const slab = new Slab(Buffer.allocUnsafeSlow(SLAB_SIZE));
  owners.set(slab.buf.buffer, slab);
  slabCounts.allocated++;
  return slab;
}

/** `view`, a part of `slab`, is handed on: it must be given back before the slab is reused. */
export function lend(slab: Slab, view: Buffer): void {
  if (view.buffer !== slab.buf.buffer) return;
  slab.lent += view.length;
  slabCounts.views++;
  slabCounts.viewBytes += view.length;
}

/** The connection is done reading into `slab`. */
export function retire(slab: Slab): void {
  slab.retired = true;
  recycleIfFree(slab);
}

/** Nothing reads `view` again. Bytes that are not a slab's are ignored. */
export function giveBack(view: Uint8Array): void {
  const slab = owners.get(view.buffer);
  if (slab === undefined || view.length === 0) return;
  slab.lent -= view.length;
  if (slab.lent < 0) throw new Error(`slab given back ${-slab.lent} bytes more than it lent (a bug)`);
  recycleIfFree(slab);
}

/** giveBack for each. */
export function giveBackAll(views: readonly Uint8Array[]): void {
  for (const v of views) giveBack(v);
}

function recycleIfFree(slab: Slab): void {
  if (!slab.retired || slab.lent !== 0) return;
  slab.retired = false; // in the free list, not in use: retired again when used and left
  free.push(slab);
}
