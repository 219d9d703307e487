/**
 * Reading ranges with bounded memory. The range being consumed is read only as fast as it is
 * used (a window, then the socket waits); read-ahead ranges are fetched whole, but only while
 * a shared byte budget has room for them.
 */
import type { ArchiveSource } from '../archive-source';
import { giveBack, giveBackAll } from '../slabs';
import type { ByteBudget } from './byte-budget';

/** Unread bytes a range streamed without read-ahead budget may queue before its socket is paused. */
const STREAM_WINDOW = 1024 * 1024;

/**
 * One ranged GET whose chunks queue until taken (no copy), each seen by `observe` first.
 * The response is read only while fewer than `allowance` bytes wait: a read-ahead range
 * gets its whole size (counted against the budget until taken), the range being consumed
 * just a window, so the socket, not memory, holds the rest.
 */
class RangeReader {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private taken = 0;
  private ended = false;
  private closed = false;
  private error: unknown = null;
  private wakeConsumer: (() => void) | null = null;
  private wakeProducer: (() => void) | null = null;
  private readonly size: number;

  constructor(source: ArchiveSource, start: number, private readonly end: number, private readonly allowance: number,
    private readonly budget: ByteBudget | null, observe?: (offset: number, buf: Buffer) => void) {
    this.size = end - start;
    void this.pump(source, start, observe);
  }

  private async pump(source: ArchiveSource, start: number, observe?: (offset: number, buf: Buffer) => void): Promise<void> {
    let at = start;
    try {
      for await (const chunk of await source.stream(start, this.end)) {
        if (this.closed) {
          giveBack(chunk);
          break;
        }
        observe?.(at, chunk);
        at += chunk.length;
        this.queue.push(chunk);
        this.queued += chunk.length;
        this.wake('consumer');
        while (this.queued >= this.allowance && !this.closed) await new Promise<void>((r) => (this.wakeProducer = r));
        if (this.closed) break; // leaving the loop ends the response
      }
    } catch (err) {
      this.error = err;
    }
    this.ended = true;
    this.wake('consumer');
  }

  private wake(who: 'consumer' | 'producer'): void {
    const w = who === 'consumer' ? this.wakeConsumer : this.wakeProducer;
    if (who === 'consumer') this.wakeConsumer = null;
    else this.wakeProducer = null;
    w?.();
  }

  /** The chunks in order, as they arrive; throws what the read failed with. */
  async *chunks(): AsyncGenerator<Buffer> {
    for (;;) {
      const chunk = this.queue.shift();
      if (chunk) {
        this.queued -= chunk.length;
        this.taken += chunk.length;
        if (!this.closed) this.budget?.release(chunk.length);
        this.wake('producer');
        yield chunk;
        continue;
      }
      if (this.error !== null) throw this.error;
      if (this.ended) return;
      await new Promise<void>((r) => (this.wakeConsumer = r));
    }
  }

  /**
   * Drops what was not taken and gives its budget back. A response still arriving is ended
   * at its next chunk; nothing waits for that.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.budget?.release(this.size - this.taken);
    giveBackAll(this.queue);
    this.queue.length = 0;
    this.queued = 0;
    this.wake('producer');
  }
}

/**
 * The bytes [start, end) as consecutive sub-ranges of at most `rangeSize`, streamed in
 * order. The range being consumed is read as it is taken; while it is, up to `ahead - 1`
 * further ranges are fetched in full whenever the shared budget has room for them (never
 * waited for), so one big entry still uses several connections and memory stays bounded.
 */
export async function* rangeChunks(source: ArchiveSource, start: number, end: number, rangeSize: number, ahead: number, budget: ByteBudget,
  observe?: (offset: number, buf: Buffer) => void): AsyncGenerator<Buffer> {
  const open: RangeReader[] = [];
  let next = start;
  const launch = (readAhead: boolean): boolean => {
    const s = next;
    const e = Math.min(end, s + rangeSize);
    if (readAhead && !budget.tryAcquire(e - s)) return false;
    next = e;
    open.push(new RangeReader(source, s, e, readAhead ? e - s : STREAM_WINDOW, readAhead ? budget : null, observe));
    return true;
  };
  try {
    while (next < end || open.length > 0) {
      if (open.length === 0) launch(false);
      for await (const chunk of open[0].chunks()) {
        while (open.length < ahead && next < end && launch(true));
        yield chunk;
      }
      open.shift()!.close();
    }
  } finally {
    for (const reader of open) reader.close();
  }
}
