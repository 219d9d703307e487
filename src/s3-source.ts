/**
 * The archive as a ranged-read source on S3. Every read after the first is pinned to the
 * ETag seen first (If-Match), so two versions of the object are never mixed. Body reads
 * have their own idle timeout: the SDK does not retry a body that stops after the headers.
 */
import { GetObjectCommand, S3Client, type GetObjectCommandOutput } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { ConfigError, SourceError } from './errors';
import { debug } from './log';

export interface ArchiveSource {
  /** s3://bucket/key, for messages. */
  readonly url: string;
  readonly size: number;
  /** Bytes [start, end) in full. */
  read(start: number, end: number): Promise<Buffer>;
  /** Bytes [start, end) as they arrive; fails with SOURCE_STALLED if the body goes idle. */
  stream(start: number, end: number): Promise<AsyncIterable<Buffer>>;
}

export interface S3SourceOptions {
  bucket: string;
  key: string;
  forcePathStyle: boolean;
  maxSockets: number;
  idleTimeoutMs: number;
}

export function s3Url(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

function describeS3Error(err: unknown, url: string, bucket: string, key: string): Error {
  if (err instanceof SourceError || err instanceof ConfigError) return err;
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? '';
  if (name === 'NoSuchKey' || (status === 404 && name !== 'NoSuchBucket')) {
    return new SourceError('SOURCE_NOT_FOUND', `${url} does not exist (404 ${name || 'Not Found'}): check SNAPLOADER_KEY and that the upload finished`);
  }
  if (name === 'NoSuchBucket') return new SourceError('SOURCE_NOT_FOUND', `bucket ${bucket} does not exist (404 NoSuchBucket): check SNAPLOADER_BUCKET`);
  if (name === 'AccessDenied' || status === 403) {
    return new SourceError('SOURCE_ACCESS_DENIED', `access to ${url} was denied (403 ${name || 'Forbidden'}): ` +
      `give the function's execution role s3:GetObject on arn:aws:s3:::${bucket}/${key}`);
  }
  if (name === 'PreconditionFailed' || status === 412) {
    return new SourceError('SOURCE_CHANGED', `${url} was replaced while it was being read (412 PreconditionFailed): upload new archives under a new key, or retry`);
  }
  if (e.message?.includes('Region is missing')) {
    return new ConfigError('no AWS region: set AWS_REGION (Lambda sets it; set it yourself outside Lambda)');
  }
  const code = e.code ?? (e as { cause?: { code?: string } }).cause?.code;
  if (code && /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH)$/.test(code)) {
    return new SourceError('SOURCE_UNREACHABLE', `cannot reach S3 for ${url} (${code}): check the network (VPC functions need an S3 endpoint or NAT) and AWS_ENDPOINT_URL_S3 if set`);
  }
  return new SourceError('SOURCE_ERROR', `reading ${url} failed: ${status ? `HTTP ${status} ` : ''}${name ? `${name}: ` : ''}${e.message ?? String(err)}`);
}

/** Yields the body's chunks; destroys it if no chunk arrives for `ms` while we wait for one. */
async function* idleGuarded(body: Readable, ms: number, what: string): AsyncGenerator<Buffer> {
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  try {
    for (;;) {
      const timer = setTimeout(() => body.destroy(new SourceError('SOURCE_STALLED',
        `no data for ${ms} ms while reading ${what}: the connection stalled (raise SNAPLOADER_IDLE_TIMEOUT_MS if the network is this slow)`)), ms);
      let r: IteratorResult<Buffer>;
      try {
        r = await it.next();
      } finally {
        clearTimeout(timer);
      }
      if (r.done) return;
      yield r.value;
    }
  } finally {
    body.destroy();
  }
}

export async function openS3Source(opts: S3SourceOptions, tailBytes: number): Promise<{ source: ArchiveSource; tail: Buffer }> {
  const { bucket, key } = opts;
  const url = s3Url(bucket, key);
  let client: S3Client;
  try {
    client = new S3Client({
      forcePathStyle: opts.forcePathStyle,
      maxAttempts: 3,
      requestHandler: {
        connectionTimeout: 3000,
        httpAgent: { keepAlive: true, maxSockets: opts.maxSockets },
        httpsAgent: { keepAlive: true, maxSockets: opts.maxSockets },
      },
    });
  } catch (err) {
    throw describeS3Error(err, url, bucket, key);
  }

  const get = async (range: string, etag: string | null): Promise<GetObjectCommandOutput> => {
    try {
      return await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range, ...(etag ? { IfMatch: etag } : {}) }));
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === 'InvalidRange' || e.$metadata?.httpStatusCode === 416) {
        throw new SourceError('SOURCE_ERROR', `${url} is empty (0 bytes), not a zip archive: upload the archive again`);
      }
      throw describeS3Error(err, url, bucket, key);
    }
  };

  // One request gives the size, the ETag and the end of the archive (a suffix range).
  const first = await get(`bytes=-${tailBytes}`, null);
  const etag = first.ETag ?? null;
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(first.ContentRange ?? '');
  const size = m ? Number(m[3]) : Number(first.ContentLength ?? 0);
  let tail = Buffer.from(await first.Body!.transformToByteArray());
  const expectedTail = Math.min(size, tailBytes);
  if (m && Number(m[2]) + 1 !== size) {
    // Some S3-compatible servers read "bytes=-N" as "bytes=0-N": ask for the end explicitly.
    debug(`${url}: the server ignored the suffix range (answered ${first.ContentRange}); reading the tail explicitly`);
    const again = await get(`bytes=${size - expectedTail}-${size - 1}`, etag);
    tail = Buffer.from(await again.Body!.transformToByteArray());
  }
  if (tail.length !== expectedTail) {
    throw new SourceError('SOURCE_ERROR', `${url}: asked for the last ${expectedTail} bytes, got ${tail.length}`);
  }
  debug(`${url}: ${size} bytes, ETag ${etag ?? '(none)'}`);

  const stream = async (start: number, end: number): Promise<AsyncIterable<Buffer>> => {
    const res = await get(`bytes=${start}-${end - 1}`, etag);
    const body = res.Body as Readable | undefined;
    if (!body) throw new SourceError('SOURCE_ERROR', `${url}: empty response for bytes ${start}-${end - 1}`);
    if (etag && res.ETag && res.ETag !== etag) {
      body.destroy();
      throw new SourceError('SOURCE_CHANGED', `${url} was replaced while it was being read (ETag ${etag}, now ${res.ETag}): upload new archives under a new key, or retry`);
    }
    const got = Number(res.ContentLength ?? -1);
    if (got !== end - start) {
      body.destroy();
      throw new SourceError('SOURCE_ERROR', `${url}: asked for bytes ${start}-${end - 1} (${end - start} bytes), the response has ${got}`);
    }
    return idleGuarded(body, opts.idleTimeoutMs, `${url} bytes ${start}-${end - 1}`);
  };

  const read = async (start: number, end: number): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const chunk of await stream(start, end)) parts.push(chunk);
    return Buffer.concat(parts);
  };

  return { source: { url, size, read, stream }, tail };
}
