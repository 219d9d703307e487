/**
 * The archive as a ranged-read source on S3, made to survive a faulty network.
 *
 * - Every GET after the first carries `If-Match: <ETag>` (and `VersionId` when pinned), and
 *   every response's ETag and object size are compared with the first one's (identity.ts), so
 *   bytes of two versions of the object are never mixed: a 412 or a different ETag is
 *   SOURCE_CHANGED at once.
 * - The SDK retries a request only until its response headers arrive; a body that is reset,
 *   cut short or goes idle afterwards would fail (or hang) the read. Here a read is a loop of
 *   attempts: when a body fails, the rest of the range [current, end) is asked for again and
 *   the caller sees one uninterrupted stream of exactly the bytes it asked for.
 * - Failures are sorted into final and transient ones (failures.ts); transient ones are
 *   retried with backoff a bounded number of times, and never past the deadline; at the
 *   deadline a request in flight is abandoned.
 * - A final failure of one read stops every other read of the same source at once.
 */
import { GetObjectCommand, S3Client, type GetObjectCommandOutput } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import type { ArchiveSource } from '../archive-source';
import { SourceError } from '../errors';
import { debug } from '../log';
import { giveBack, giveBackAll } from '../slabs';
import { envCredentials } from './credentials';
import { backoffAfter, brokenBody, classify, giveUp, invalidRange, RETRY_DEFAULTS, timeoutError, Transient, type Attempts, type RetryPolicy } from './failures';
import { ReadingHandler } from './http/handler';
import { checkResponse, identityOf, type Identity } from './identity';

export interface S3SourceOptions {
  bucket: string;
  key: string;
  forcePathStyle: boolean;
  maxSockets: number;
  /** A response that sends nothing (no headers, or no body bytes) for this long is retried, then SOURCE_STALLED. */
  idleTimeoutMs: number;
  /** Read this version of the object (every GET asks for it). Default: the current version, pinned by its ETag. */
  versionId?: string;
  /** Epoch ms: no attempt starts after it and one in flight is abandoned (SOURCE_TIMEOUT). Default: none. */
  deadline?: number;
  /** Attempts per read that may fail in a row without delivering a byte (default 5). */
  maxAttempts?: number;
  /** Backoff before attempt n+1 is about base * 2^(n-1) ms with jitter, at most retryMaxMs (defaults 100 and 2000; 4x for 503 SlowDown). */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export function s3Url(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Opens the object: one suffix-range GET gives its size, its ETag and its last `tailBytes` bytes. */
export async function openS3Source(opts: S3SourceOptions, tailBytes: number): Promise<{ source: S3Source; tail: Buffer }> {
  return S3Source.open(opts, tailBytes);
}

export class S3Source implements ArchiveSource {
  readonly url: string;
  private readonly client: S3Client;
  private readonly policy: RetryPolicy;
  private readonly deadline: number;
  private readonly idleMs: number;
  private askedRegion = '?';
  /** The version every read is pinned to, known once the first response is in. */
  private pin: Identity = { size: 0, etag: null, versionId: null, lastModified: null };
  /** Shared by every read: the first final failure stops the others; the deadline stops all. */
  private fatal: Error | null = null;
  private readonly inflight = new Set<(reason: Error) => void>();
  private readonly deadlineReached = new Transient('stall', 'the deadline passed');
  /** GETs sent and retries waited for, for the init summary's metrics. */
  readonly counts = { gets: 0, retries: 0 };

  static async open(opts: S3SourceOptions, tailBytes: number): Promise<{ source: S3Source; tail: Buffer }> {
    const source = new S3Source(opts);
    try {
      source.askedRegion = await source.client.config.region();
    } catch {
      // The first request reports it ("Region is missing").
    }
    source.startDeadline();
    const tail = await source.readTail(tailBytes);
    return { source, tail };
  }

  private constructor(private readonly opts: S3SourceOptions) {
    this.url = s3Url(opts.bucket, opts.key);
    this.policy = {
      maxAttempts: Math.max(1, opts.maxAttempts ?? RETRY_DEFAULTS.maxAttempts),
      retryBaseMs: opts.retryBaseMs ?? RETRY_DEFAULTS.retryBaseMs,
      retryMaxMs: opts.retryMaxMs ?? RETRY_DEFAULTS.retryMaxMs,
    };
    this.deadline = opts.deadline ?? Infinity;
    this.idleMs = opts.idleTimeoutMs;
    try {
      this.client = new S3Client({
        // Lambda always sets the credentials and AWS_REGION. Taken straight from the environment,
        // the SDK's default credential chain (profiles, SSO, processes, IMDS...) is never loaded:
        // build.mjs keeps it out of the code parsed at start. Without them, the SDK's chains run.
        credentials: envCredentials(process.env),
        region: process.env.AWS_REGION || undefined,
        forcePathStyle: opts.forcePathStyle,
        // Retries are ours (below): the SDK's stop at the response headers, ours cover the body.
        maxAttempts: 1,
        // The SDK signs and parses; the bytes move through connections of ours (http/handler.ts).
        requestHandler: new ReadingHandler({ maxSockets: opts.maxSockets, connectionTimeoutMs: 3000 }),
      });
    } catch (err) {
      throw classify(err, this.url, opts.bucket, opts.key, '?');
    }
  }

  get size(): number {
    return this.pin.size;
  }

  /** Bytes [start, end) of the pinned version, as they arrive (a bound function: callers pass it on). */
  readonly stream = async (start: number, end: number): Promise<AsyncIterable<Buffer>> => {
    if (this.fatal) throw this.fatal;
    if (start < 0 || end > this.size || start > end) {
      throw new SourceError('SOURCE_ERROR', `${this.url}: bytes ${start}-${end - 1} are outside the object (${this.size} bytes)`);
    }
    return this.resumable(start, end, null);
  };

  /** Bytes [start, end) in full (a bound function: callers pass it on). */
  readonly read = async (start: number, end: number): Promise<Buffer> => collect(await this.stream(start, end));

  private startDeadline(): void {
    if (!Number.isFinite(this.deadline)) return;
    const timer = setTimeout(() => this.stopAll(this.deadlineReached), Math.max(0, this.deadline - Date.now()));
    timer.unref();
  }

  private stopAll(reason: Error): void {
    for (const kill of [...this.inflight]) kill(reason);
  }

  /** Records a final failure (the first one stops every other read); returns it to throw. */
  private fail(err: Error): Error {
    if (!(err instanceof Transient) && this.fatal === null) {
      this.fatal = err;
      this.stopAll(err);
    }
    return err;
  }

  /** A reason we stopped a request or a body ourselves, turned into what the read throws or retries. */
  private settle(a: Attempts, err: unknown): Transient {
    if (err === this.deadlineReached) throw this.fail(timeoutError(a.what, a.last));
    if (err instanceof Transient) return err;
    throw this.fail(err as Error);
  }

  /** After a transient failure: throws if the attempts or the time are used up, else waits the backoff. */
  private async backOff(a: Attempts, t: Transient, progressed: boolean): Promise<void> {
    const delay = backoffAfter(a, t, progressed, this.policy);
    if (delay === null) throw this.fail(giveUp(a, t, this.url));
    if (Date.now() + delay >= this.deadline) throw this.fail(timeoutError(a.what, t));
    debug(`${a.what}: ${t.detail}; asking again in ${delay} ms (attempt ${a.requests + 1})`);
    this.counts.retries++;
    await sleep(delay);
    if (this.fatal) throw this.fatal;
  }

  /** One GET, up to its response headers, bounded by the idle timeout and the deadline. `pinned`: send If-Match. */
  private async send(range: string, pinned: boolean): Promise<GetObjectCommandOutput> {
    if (this.fatal) throw this.fatal;
    const ac = new AbortController();
    let reason: Error | null = null;
    const kill = (why: Error): void => {
      reason ??= why;
      ac.abort();
    };
    this.inflight.add(kill);
    const timer = setTimeout(() => kill(new Transient('stall', `no response headers within ${this.idleMs} ms`)), this.idleMs);
    this.counts.gets++;
    try {
      return await this.client.send(new GetObjectCommand({
        Bucket: this.opts.bucket,
        Key: this.opts.key,
        Range: range,
        ...(this.opts.versionId ? { VersionId: this.opts.versionId } : {}),
        ...(pinned && this.pin.etag ? { IfMatch: this.pin.etag } : {}),
      }), { abortSignal: ac.signal });
    } catch (err) {
      if (reason) throw reason;
      throw invalidRange(err, this.url, range, pinned) ?? classify(err, this.url, this.opts.bucket, this.opts.key, this.askedRegion);
    } finally {
      clearTimeout(timer);
      this.inflight.delete(kill);
    }
  }

  /** One request gives the size, the ETag and the end of the archive (a suffix range); then the version is pinned. */
  private async readTail(tailBytes: number): Promise<Buffer> {
    let first: GetObjectCommandOutput | null = null;
    const attempts: Attempts = { what: `${this.url} (its last ${tailBytes} bytes)`, bytes: `its last ${tailBytes} bytes`, requests: 0, inARow: 0, last: null };
    while (first === null) {
      if (Date.now() >= this.deadline) throw this.fail(timeoutError(attempts.what, attempts.last));
      attempts.requests++;
      try {
        first = await this.send(`bytes=-${tailBytes}`, false);
      } catch (err) {
        await this.backOff(attempts, this.settle(attempts, err), false);
      }
    }
    const got = identityOf(first);
    this.pin = { ...got.id, versionId: this.opts.versionId ?? got.id.versionId };
    const size = this.pin.size;
    const expectedTail = Math.min(size, tailBytes);
    let tail: Buffer;
    if (first.ContentRange && got.last + 1 !== size) {
      // Some S3-compatible servers read "bytes=-N" as "bytes=0-N": ask for the end explicitly.
      debug(`${this.url}: the server ignored the suffix range (answered ${first.ContentRange}); reading the tail explicitly`);
      (first.Body as Readable | undefined)?.destroy();
      tail = await collect(this.resumable(size - expectedTail, size, null));
    } else {
      // The first response's own body, resumed like any other if it breaks.
      const length = Number(first.ContentLength ?? -1);
      if (length !== expectedTail || (first.ContentRange && got.first !== size - expectedTail)) {
        (first.Body as Readable | undefined)?.destroy();
        throw new SourceError('SOURCE_ERROR', `${this.url}: asked for the last ${expectedTail} bytes, got ${length}`);
      }
      tail = await collect(this.resumable(size - expectedTail, size, first));
    }
    debug(`${this.url}: ${size} bytes, ETag ${this.pin.etag ?? '(none)'}${this.pin.versionId ? `, version ${this.pin.versionId}` : ''}`);
    return tail;
  }

  /**
   * Bytes [start, end) of the pinned version, resuming after every transient failure.
   * `opened` is a response already in hand for [start, end) (the first request's).
   */
  private async *resumable(start: number, end: number, opened: GetObjectCommandOutput | null): AsyncGenerator<Buffer> {
    const a: Attempts = { what: `${this.url} bytes ${start}-${end - 1}`, bytes: `bytes ${start}-${end - 1}`, requests: opened ? 1 : 0, inARow: 0, last: null };
    let pos = start;
    if (start >= end) {
      (opened?.Body as Readable | undefined)?.destroy();
      return;
    }
    while (pos < end) {
      if (this.fatal) throw this.fatal;
      if (!opened) {
        if (Date.now() >= this.deadline) throw this.fail(timeoutError(a.what, a.last));
        a.requests++;
        try {
          opened = await this.send(`bytes=${pos}-${end - 1}`, true);
          checkResponse(opened, this.pin, pos, end, this.url);
        } catch (err) {
          (opened?.Body as Readable | undefined)?.destroy();
          opened = null;
          await this.backOff(a, this.settle(a, err), false);
          continue;
        }
      }
      const body = opened.Body as Readable | undefined;
      opened = null;
      if (!body) throw this.fail(new SourceError('SOURCE_ERROR', `${this.url}: empty response for bytes ${pos}-${end - 1}`));
      const attemptStart = pos;
      let failure: unknown = null;
      let reason: Error | null = null;
      const kill = (why: Error): void => {
        reason ??= why;
        body.destroy(why);
      };
      this.inflight.add(kill);
      const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      try {
        for (;;) {
          let r: IteratorResult<Buffer>;
          const timer = setTimeout(() => kill(new Transient('stall', `no data for ${this.idleMs} ms`)), this.idleMs);
          try {
            r = await it.next();
          } catch (err) {
            failure = reason ?? err;
            break;
          } finally {
            clearTimeout(timer);
          }
          if (r.done) break;
          const chunk = r.value;
          if (pos + chunk.length > end) {
            giveBack(chunk);
            failure = new SourceError('SOURCE_ERROR', `${this.url}: the response for bytes ${attemptStart}-${end - 1} has more bytes than asked for`);
            break;
          }
          pos += chunk.length;
          if (chunk.length > 0) yield chunk;
        }
      } finally {
        this.inflight.delete(kill);
        body.destroy();
      }
      if (pos === end && failure === null) return;
      const got = `${pos - attemptStart} of ${end - attemptStart} bytes`;
      // Stopped by us (a stall, the deadline, another read's final failure) or a bad response: as decided;
      // the body stream's own error or an early end: the connection broke.
      const t = failure !== null && (failure === reason || failure instanceof SourceError) ? this.settle(a, failure) : brokenBody(failure, got);
      await this.backOff(a, t, pos > attemptStart);
    }
  }
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  const all = Buffer.concat(parts);
  giveBackAll(parts);
  return all;
}
