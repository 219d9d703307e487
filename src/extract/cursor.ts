/**
 * Reads exactly what it is asked for from a stream of response chunks: local headers are
 * copied, entry data is handed on as views of the chunks (no copy).
 *
 * The chunks may be lent memory (slabs.ts). The cursor gives back what it consumes itself
 * (headers, skipped bytes, what is left at close); a view it hands on (readParts, take) is the
 * caller's to give back.
 */
import { SourceError } from '../errors';
import { giveBack, giveBackAll } from '../slabs';
import type { HeaderReader } from '../zip/local-header';

export class Cursor implements HeaderReader {
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

  /** The next n bytes, copied (never a view of lent memory). */
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
      giveBackAll(parts);
    }
    const view = this.chunk.subarray(0, n);
    const out = Buffer.from(view);
    giveBack(view);
    this.chunk = this.chunk.subarray(n);
    this.pos += n;
    return out;
  }

  /** The next n bytes as views of the response chunks they span (no copy). */
  async readParts(n: number): Promise<Buffer[]> {
    if (n > 0 && n <= this.chunk.length) {
      // Most entries lie inside the chunk at hand: one view, no generator.
      const piece = this.chunk.subarray(0, n);
      this.chunk = this.chunk.subarray(n);
      this.pos += n;
      return [piece];
    }
    const parts: Buffer[] = [];
    for await (const piece of this.take(n)) parts.push(piece);
    return parts.length > 0 ? parts : [Buffer.alloc(0)];
  }

  async skipTo(offset: number): Promise<void> {
    while (this.pos + this.chunk.length < offset) {
      this.pos += this.chunk.length;
      giveBack(this.chunk);
      this.chunk = Buffer.alloc(0);
      await this.more();
    }
    const skip = Math.max(0, offset - this.pos);
    giveBack(this.chunk.subarray(0, skip));
    this.chunk = this.chunk.subarray(skip);
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
    giveBack(this.chunk);
    this.chunk = Buffer.alloc(0);
    await this.it.return?.();
  }
}
