/**
 * SNAPLOADER_SHA256: the SHA-256 of the whole object, computed from the bytes as they arrive.
 * Ranges arrive out of order; a range is hashed as soon as everything before it has been,
 * so what waits is bounded by the ranges in flight, never the archive.
 */
import { createHash, type Hash } from 'node:crypto';
import { SnaploaderError } from './errors';

export class OrderedHasher {
  private readonly hash: Hash = createHash('sha256');
  private next = 0;
  private readonly waiting = new Map<number, Buffer>();

  constructor(private readonly size: number) {}

  push(offset: number, buf: Buffer): void {
    if (offset !== this.next) {
      if (offset > this.next) this.waiting.set(offset, buf);
      return; // offset < next: a byte range read twice (a retry), already hashed
    }
    this.hash.update(buf);
    this.next += buf.length;
    for (let w = this.waiting.get(this.next); w; w = this.waiting.get(this.next)) {
      this.waiting.delete(this.next);
      this.hash.update(w);
      this.next += w.length;
    }
  }

  /** Throws unless every byte was hashed and the digest is `expected` (hex). */
  verify(expected: string, url: string): void {
    if (this.next !== this.size) {
      throw new Error(`integrity check incomplete: hashed ${this.next} of ${this.size} bytes`);
    }
    const got = this.hash.digest('hex');
    if (got !== expected) {
      throw new SnaploaderError('INTEGRITY_MISMATCH', `${url} has SHA-256 ${got}, but SNAPLOADER_SHA256 pins ${expected}: ` +
        'this is not the pinned archive; upload the right one or update the pin');
    }
  }
}

/** With a pin, every byte must be read: fill the gaps between groups and cover [0, size). */
export function coverWholeObject<G extends { start: number; end: number; files: unknown[] }>(groups: G[], size: number, rangeSize: number): (G | { start: number; end: number; files: [] })[] {
  const out: (G | { start: number; end: number; files: [] })[] = [];
  let at = 0;
  const gap = (end: number): void => {
    for (; at < end; at = Math.min(end, at + rangeSize)) out.push({ start: at, end: Math.min(end, at + rangeSize), files: [] });
  };
  for (const g of [...groups].sort((a, b) => a.start - b.start)) {
    gap(g.start);
    out.push(g);
    at = g.end;
  }
  gap(size);
  return out;
}
