/**
 * The archive as a ranged-read source on S3, made to survive a faulty network.
 *
 * - Every GET after the first carries `If-Match: <ETag>` (and `VersionId` when pinned), and
 *   every response's ETag and object size are compared with the first one's, so bytes of two
 *   versions of the object are never mixed: a 412 or a different ETag is SOURCE_CHANGED at once.
 * - The SDK retries a request only until its response headers arrive; a body that is reset,
 *   cut short or goes idle afterwards would fail (or hang) the read. Here a read is a loop of
 *   attempts: when a body fails, the rest of the range [current, end) is asked for again and
 *   the caller sees one uninterrupted stream of exactly the bytes it asked for.
 * - Failures are sorted into final ones (403, 404, 412, a bucket in another region, a
 *   malformed answer) and transient ones (5xx and SlowDown, connection errors, stalls, bodies
 *   cut short), which are retried with exponential backoff and jitter, a bounded number of
 *   times, and never past the deadline; at the deadline a request in flight is abandoned.
 * - A final failure of one read stops every other read of the same source at once.
 */
import { GetObjectCommand, S3Client, type GetObjectCommandOutput, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { ConfigError, SourceError } from './errors';
import { debug } from './log';

export interface ArchiveSource {
  /** s3://bucket/key, for messages. */
  readonly url: string;
  readonly size: number;
  /** Bytes [start, end) in full. */
  read(start: number, end: number): Promise<Buffer>;
  /**
   * Bytes [start, end) of one version of the object, in order, as they arrive. Interrupted
   * bodies are resumed behind the scenes; it fails with a SourceError when they cannot be.
   */
  stream(start: number, end: number): Promise<AsyncIterable<Buffer>>;
}

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

export const RETRY_DEFAULTS = { maxAttempts: 5, retryBaseMs: 100, retryMaxMs: 2000 };
/** A read may resume at most this many times maxAttempts in all, even when every attempt makes progress. */
const MAX_REQUESTS_FACTOR = 4;
const THROTTLE_FACTOR = 4;

export function s3Url(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

/** A failure worth another attempt. `kind` picks the message if the attempts run out. */
class Transient extends Error {
  constructor(readonly kind: 'stall' | 'network' | 'server' | 'short', readonly detail: string, readonly throttled = false) {
    super(detail);
  }
}

type SdkError = {
  name?: string;
  code?: string;
  message?: string;
  Region?: string;
  Endpoint?: string;
  cause?: { code?: string };
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
};

const NETWORK_CODES = /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|ECONNABORTED|ENETDOWN|EHOSTDOWN|EPROTO|ERR_STREAM_PREMATURE_CLOSE|UND_ERR_SOCKET)$/;

function networkCode(e: SdkError): string | undefined {
  const code = e.code ?? e.cause?.code;
  if (code && NETWORK_CODES.test(code)) return code;
  // Errors that crossed a realm reach us only as text ("... read ECONNRESET").
  const named = /\b(E[A-Z]{4,}|ERR_STREAM_PREMATURE_CLOSE)\b/.exec(e.message ?? '')?.[1];
  if (named && NETWORK_CODES.test(named)) return named;
  if (/socket hang up/i.test(e.message ?? '')) return 'ECONNRESET';
  if (e.name === 'TimeoutError' || /TimeoutError/.test(e.message ?? '')) return 'ETIMEDOUT';
  return undefined;
}

/** The region a redirect or a region error names, or null when S3 did not name one. */
function redirectRegion(e: SdkError): { region: string | null } | null {
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? '';
  const header = e.$response?.headers?.['x-amz-bucket-region'] ?? null;
  if (status === 301 || status === 307 || name === 'PermanentRedirect' || name === 'TemporaryRedirect') {
    const fromEndpoint = /(?:^|\.)s3[.-]([a-z]{2}(?:-[a-z]+)+-\d+)\./.exec(e.Endpoint ?? '')?.[1] ?? null;
    return { region: header ?? fromEndpoint };
  }
  if (name === 'AuthorizationHeaderMalformed' || name === 'IllegalLocationConstraintException' || (status === 400 && (e.Region || header))) {
    const fromMessage = /expecting '([a-z0-9-]+)'/.exec(e.message ?? '')?.[1] ?? null;
    return { region: e.Region ?? header ?? fromMessage };
  }
  return null;
}

/** A final SourceError/ConfigError, or a Transient to retry. */
function classify(err: unknown, url: string, bucket: string, key: string, askedRegion: string): Error {
  if (err instanceof SourceError || err instanceof ConfigError || err instanceof Transient) return err;
  const e = err as SdkError;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? '';
  if (name === 'NoSuchKey' || (status === 404 && name !== 'NoSuchBucket')) {
    return new SourceError('SOURCE_NOT_FOUND', `${url} does not exist (404 ${name || 'Not Found'}): check SNAPLOADER_KEY and that the upload finished`);
  }
  if (name === 'NoSuchBucket') return new SourceError('SOURCE_NOT_FOUND', `bucket ${bucket} does not exist (404 NoSuchBucket): check SNAPLOADER_BUCKET`);
  if (name === 'NoSuchVersion') return new SourceError('SOURCE_NOT_FOUND', `${url} has no such version (404 NoSuchVersion): check the version id`);
  const redirect = redirectRegion(e);
  if (redirect) {
    const why = `${status ?? '?'} ${name || 'redirect'}`;
    const where = redirect.region
      ? `the bucket ${bucket} is in ${redirect.region} but the function asked ${askedRegion} (${why})`
      : `the bucket ${bucket} is in another region than the function's ${askedRegion} (${why}${e.Endpoint ? `, endpoint ${e.Endpoint}` : ''})`;
    return new SourceError('SOURCE_WRONG_REGION', `${where}: set AWS_REGION or use a bucket in the function's region`);
  }
  if (name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || status === 403) {
    return new SourceError('SOURCE_ACCESS_DENIED', `access to ${url} was denied (403 ${name || 'Forbidden'}): ` +
      `give the function's execution role s3:GetObject on arn:aws:s3:::${bucket}/${key}`);
  }
  if (name === 'PreconditionFailed' || status === 412) {
    return changed(url, '412 PreconditionFailed');
  }
  if (e.message?.includes('Region is missing')) {
    return new ConfigError('no AWS region: set AWS_REGION (Lambda sets it; set it yourself outside Lambda)');
  }
  if (status !== undefined && (status >= 500 || status === 429 || status === 408)) {
    const throttled = status === 503 || status === 429 || /SlowDown|Throttl/i.test(name);
    return new Transient('server', `HTTP ${status}${name ? ` ${name}` : ''}`, throttled);
  }
  if (name === 'SlowDown' || name === 'RequestTimeout' || name === 'InternalError' || name === 'ServiceUnavailable') {
    return new Transient('server', name, name === 'SlowDown');
  }
  const code = networkCode(e);
  if (code) return new Transient('network', code);
  return new SourceError('SOURCE_ERROR', `reading ${url} failed: ${status ? `HTTP ${status} ` : ''}${name ? `${name}: ` : ''}${e.message ?? String(err)}`);
}

function changed(url: string, how: string): SourceError {
  return new SourceError('SOURCE_CHANGED', `${url} was replaced while it was being read (${how}): upload new archives under a new key, or retry`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What every response must agree on: one version of one object. */
interface Identity {
  size: number;
  etag: string | null;
  versionId: string | null;
  lastModified: number | null;
}

type StaticCredentials = Exclude<NonNullable<S3ClientConfig['credentials']>, (...args: never[]) => unknown>;

/**
 * What the SDK's default credential chain would find first: the credentials in the environment,
 * read as its fromEnv reads them. Undefined (so the SDK runs its default chain) without both
 * keys, or with AWS_PROFILE, which the chain puts before them.
 */
export function envCredentials(env: NodeJS.ProcessEnv): StaticCredentials | undefined {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey || env.AWS_PROFILE) return undefined;
  const sessionToken = env.AWS_SESSION_TOKEN;
  const expiry = env.AWS_CREDENTIAL_EXPIRATION;
  const credentialScope = env.AWS_CREDENTIAL_SCOPE;
  const accountId = env.AWS_ACCOUNT_ID;
  return {
    accessKeyId,
    secretAccessKey,
    ...(sessionToken && { sessionToken }),
    ...(expiry && { expiration: new Date(expiry) }),
    ...(credentialScope && { credentialScope }),
    ...(accountId && { accountId }),
    // The user agent then reports them as environment credentials, as the chain's would be.
    $source: { CREDENTIALS_ENV_VARS: 'g' },
  } as StaticCredentials;
}

export async function openS3Source(opts: S3SourceOptions, tailBytes: number): Promise<{ source: ArchiveSource; tail: Buffer }> {
  const { bucket, key } = opts;
  const url = s3Url(bucket, key);
  const maxAttempts = Math.max(1, opts.maxAttempts ?? RETRY_DEFAULTS.maxAttempts);
  const retryBaseMs = opts.retryBaseMs ?? RETRY_DEFAULTS.retryBaseMs;
  const retryMaxMs = opts.retryMaxMs ?? RETRY_DEFAULTS.retryMaxMs;
  const deadline = opts.deadline ?? Infinity;
  const idleMs = opts.idleTimeoutMs;

  let client: S3Client;
  try {
    client = new S3Client({
      // Lambda always sets the credentials and AWS_REGION. Taken straight from the environment,
      // the SDK's default credential chain (profiles, SSO, processes, IMDS...) is never loaded:
      // build.mjs keeps it out of the code parsed at start. Without them, the SDK's chains run.
      credentials: envCredentials(process.env),
      region: process.env.AWS_REGION || undefined,
      forcePathStyle: opts.forcePathStyle,
      // Retries are ours (below): the SDK's stop at the response headers, ours cover the body.
      maxAttempts: 1,
      requestHandler: {
        connectionTimeout: 3000,
        httpAgent: { keepAlive: true, maxSockets: opts.maxSockets },
        httpsAgent: { keepAlive: true, maxSockets: opts.maxSockets },
      },
    });
  } catch (err) {
    throw classify(err, url, bucket, key, '?');
  }
  let askedRegion = '?';
  try {
    askedRegion = await client.config.region();
  } catch {
    // The first request reports it ("Region is missing").
  }
  const describeErr = (err: unknown): Error => classify(err, url, bucket, key, askedRegion);

  // Shared by every read: the first final failure stops the others; the deadline stops all.
  let fatal: Error | null = null;
  const inflight = new Set<(reason: Error) => void>();
  const stopAll = (reason: Error): void => {
    for (const kill of [...inflight]) kill(reason);
  };
  const timeoutError = (what: string, last: Transient | null): SourceError =>
    new SourceError('SOURCE_TIMEOUT', `reading ${what} did not finish before the deadline${last ? ` (last failure: ${last.detail})` : ''}: ` +
      'the network to S3 is too slow or failing (raise SNAPLOADER_TIMEOUT if it is just slow)');
  const deadlineReached = new Transient('stall', 'the deadline passed');
  let deadlineTimer: NodeJS.Timeout | null = null;
  if (Number.isFinite(deadline)) {
    deadlineTimer = setTimeout(() => stopAll(deadlineReached), Math.max(0, deadline - Date.now()));
    deadlineTimer.unref();
  }
  const fail = (err: Error): Error => {
    if (!(err instanceof Transient) && fatal === null) {
      fatal = err;
      stopAll(err);
    }
    return err;
  };

  /** One GET, up to its response headers, bounded by the idle timeout and the deadline. */
  const send = async (range: string, pin: Identity | null): Promise<GetObjectCommandOutput> => {
    if (fatal) throw fatal;
    const ac = new AbortController();
    let reason: Error | null = null;
    const kill = (why: Error): void => {
      reason ??= why;
      ac.abort();
    };
    inflight.add(kill);
    const timer = setTimeout(() => kill(new Transient('stall', `no response headers within ${idleMs} ms`)), idleMs);
    try {
      return await client.send(new GetObjectCommand({
        Bucket: bucket,
        Key: key,
        Range: range,
        ...(opts.versionId ? { VersionId: opts.versionId } : {}),
        ...(pin?.etag ? { IfMatch: pin.etag } : {}),
      }), { abortSignal: ac.signal });
    } catch (err) {
      if (reason) throw reason;
      const e = err as SdkError;
      if (e.name === 'InvalidRange' || e.$metadata?.httpStatusCode === 416) {
        // First request: the object is empty. Later: it is now shorter than it was.
        if (pin) throw changed(url, `${range} is no longer inside it (416 InvalidRange)`);
        throw new SourceError('SOURCE_ERROR', `${url} is empty (0 bytes), not a zip archive: upload the archive again`);
      }
      throw describeErr(err);
    } finally {
      clearTimeout(timer);
      inflight.delete(kill);
    }
  };

  const identityOf = (res: GetObjectCommandOutput): { id: Identity; first: number; last: number } => {
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.ContentRange ?? '');
    const length = Number(res.ContentLength ?? -1);
    const size = m ? Number(m[3]) : length;
    return {
      id: { size, etag: res.ETag ?? null, versionId: res.VersionId ?? null, lastModified: res.LastModified?.getTime() ?? null },
      first: m ? Number(m[1]) : 0,
      last: m ? Number(m[2]) : length - 1,
    };
  };

  /** Checks a response is the same version of the object and exactly the bytes asked for. */
  const check = (res: GetObjectCommandOutput, pin: Identity, start: number, end: number): void => {
    const got = identityOf(res);
    if (pin.etag && got.id.etag && got.id.etag !== pin.etag) throw changed(url, `ETag ${pin.etag}, now ${got.id.etag}`);
    if (pin.versionId && got.id.versionId && got.id.versionId !== pin.versionId) throw changed(url, `version ${pin.versionId}, now ${got.id.versionId}`);
    if (!pin.etag && pin.lastModified !== null && got.id.lastModified !== null && got.id.lastModified !== pin.lastModified) {
      throw changed(url, `Last-Modified ${new Date(pin.lastModified).toISOString()}, now ${new Date(got.id.lastModified).toISOString()}`);
    }
    if (res.ContentRange && got.id.size !== pin.size) throw changed(url, `${pin.size} bytes, now ${got.id.size}`);
    const length = Number(res.ContentLength ?? -1);
    if (length !== end - start || (res.ContentRange && got.first !== start)) {
      throw new SourceError('SOURCE_ERROR', `${url}: asked for bytes ${start}-${end - 1} (${end - start} bytes), the response has ${length}` +
        `${res.ContentRange ? ` (${res.ContentRange})` : ''}`);
    }
  };

  /** One read's attempts: how many, how many failed in a row, the last failure. */
  interface Attempts {
    /** The object and the bytes, for messages. */
    what: string;
    /** The bytes alone. */
    bytes: string;
    requests: number;
    inARow: number;
    last: Transient | null;
  }

  const giveUp = (a: Attempts, t: Transient): SourceError => {
    const tries = `${a.requests} attempt${a.requests === 1 ? '' : 's'}`;
    switch (t.kind) {
      case 'stall':
        return new SourceError('SOURCE_STALLED', `${t.detail} while reading ${a.what}, ${tries}: the connection stalled ` +
          '(raise SNAPLOADER_IDLE_TIMEOUT_MS if the network is this slow)');
      case 'server':
        return new SourceError('SOURCE_UNAVAILABLE', `S3 answered ${t.detail} while reading ${a.what}, ${tries}: ` +
          `${t.throttled ? 'S3 is throttling requests (SlowDown)' : 'S3 is failing'}; try again later`);
      case 'network':
        return new SourceError('SOURCE_UNREACHABLE', `cannot reach S3 for ${url} (${t.detail}) after ${tries} at ${a.bytes}: ` +
          'check the network (VPC functions need an S3 endpoint or NAT) and AWS_ENDPOINT_URL_S3 if set');
      case 'short':
        return new SourceError('SOURCE_UNREACHABLE', `the connection to S3 kept breaking while reading ${a.what} (${t.detail}), ${tries}: check the network`);
    }
  };

  /** After a transient failure: throws if the attempts or the time are used up, else waits the backoff. */
  const backOff = async (a: Attempts, t: Transient, progressed: boolean): Promise<void> => {
    a.last = t;
    a.inARow = progressed ? 1 : a.inARow + 1;
    if (a.inARow >= maxAttempts || a.requests >= maxAttempts * MAX_REQUESTS_FACTOR) throw fail(giveUp(a, t));
    const factor = t.throttled ? THROTTLE_FACTOR : 1;
    const cap = Math.min(retryMaxMs * factor, retryBaseMs * factor * 2 ** (a.inARow - 1));
    const delay = Math.round(cap / 2 + (Math.random() * cap) / 2);
    if (Date.now() + delay >= deadline) throw fail(timeoutError(a.what, t));
    debug(`${a.what}: ${t.detail}; asking again in ${delay} ms (attempt ${a.requests + 1})`);
    await sleep(delay);
    if (fatal) throw fatal;
  };

  /** A reason we stopped a request or a body ourselves, turned into what the read throws or retries. */
  const settle = (a: Attempts, err: unknown): Transient => {
    if (err === deadlineReached) throw fail(timeoutError(a.what, a.last));
    if (err instanceof Transient) return err;
    throw fail(err as Error);
  };

  /**
   * Bytes [start, end) of the pinned version, resuming after every transient failure.
   * `opened` is a response already in hand for [start, end) (the first request's).
   */
  async function* resumable(start: number, end: number, pin: Identity, opened: GetObjectCommandOutput | null): AsyncGenerator<Buffer> {
    const a: Attempts = { what: `${url} bytes ${start}-${end - 1}`, bytes: `bytes ${start}-${end - 1}`, requests: opened ? 1 : 0, inARow: 0, last: null };
    let pos = start;
    if (start >= end) {
      (opened?.Body as Readable | undefined)?.destroy();
      return;
    }
    while (pos < end) {
      if (fatal) throw fatal;
      if (!opened) {
        if (Date.now() >= deadline) throw fail(timeoutError(a.what, a.last));
        a.requests++;
        try {
          opened = await send(`bytes=${pos}-${end - 1}`, pin);
          check(opened, pin, pos, end);
        } catch (err) {
          (opened?.Body as Readable | undefined)?.destroy();
          opened = null;
          await backOff(a, settle(a, err), false);
          continue;
        }
      }
      const body = opened.Body as Readable | undefined;
      opened = null;
      if (!body) throw fail(new SourceError('SOURCE_ERROR', `${url}: empty response for bytes ${pos}-${end - 1}`));
      const attemptStart = pos;
      let failure: unknown = null;
      let reason: Error | null = null;
      const kill = (why: Error): void => {
        reason ??= why;
        body.destroy(why);
      };
      inflight.add(kill);
      const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      try {
        for (;;) {
          let r: IteratorResult<Buffer>;
          const timer = setTimeout(() => kill(new Transient('stall', `no data for ${idleMs} ms`)), idleMs);
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
            failure = new SourceError('SOURCE_ERROR', `${url}: the response for bytes ${attemptStart}-${end - 1} has more bytes than asked for`);
            break;
          }
          pos += chunk.length;
          if (chunk.length > 0) yield chunk;
        }
      } finally {
        inflight.delete(kill);
        body.destroy();
      }
      if (pos === end && failure === null) return;
      const got = `${pos - attemptStart} of ${end - attemptStart} bytes`;
      let t: Transient;
      if (failure === null) {
        t = new Transient('short', `the body ended after ${got}`);
      } else if (failure === reason || failure instanceof SourceError) {
        t = settle(a, failure);
      } else {
        // The body stream's own error: the connection was reset or closed early.
        const e = failure as SdkError;
        t = new Transient('short', `${networkCode(e) ?? e.message ?? String(failure)} after ${got}`);
      }
      await backOff(a, t, pos > attemptStart);
    }
  }

  // One request gives the size, the ETag and the end of the archive (a suffix range).
  let first: GetObjectCommandOutput | null = null;
  const firstAttempts: Attempts = { what: `${url} (its last ${tailBytes} bytes)`, bytes: `its last ${tailBytes} bytes`, requests: 0, inARow: 0, last: null };
  while (first === null) {
    if (Date.now() >= deadline) throw fail(timeoutError(firstAttempts.what, firstAttempts.last));
    firstAttempts.requests++;
    try {
      first = await send(`bytes=-${tailBytes}`, null);
    } catch (err) {
      await backOff(firstAttempts, settle(firstAttempts, err), false);
    }
  }
  const got = identityOf(first);
  const pin: Identity = { ...got.id, versionId: opts.versionId ?? got.id.versionId };
  const size = pin.size;
  const expectedTail = Math.min(size, tailBytes);
  let tail: Buffer;
  if (first.ContentRange && got.last + 1 !== size) {
    // Some S3-compatible servers read "bytes=-N" as "bytes=0-N": ask for the end explicitly.
    debug(`${url}: the server ignored the suffix range (answered ${first.ContentRange}); reading the tail explicitly`);
    (first.Body as Readable | undefined)?.destroy();
    tail = await collect(resumable(size - expectedTail, size, pin, null));
  } else {
    // The first response's own body, resumed like any other if it breaks.
    const length = Number(first.ContentLength ?? -1);
    if (length !== expectedTail || (first.ContentRange && got.first !== size - expectedTail)) {
      (first.Body as Readable | undefined)?.destroy();
      throw new SourceError('SOURCE_ERROR', `${url}: asked for the last ${expectedTail} bytes, got ${length}`);
    }
    tail = await collect(resumable(size - expectedTail, size, pin, first));
  }
  debug(`${url}: ${size} bytes, ETag ${pin.etag ?? '(none)'}${pin.versionId ? `, version ${pin.versionId}` : ''}`);

  const stream = async (start: number, end: number): Promise<AsyncIterable<Buffer>> => {
    if (fatal) throw fatal;
    if (start < 0 || end > size || start > end) {
      throw new SourceError('SOURCE_ERROR', `${url}: bytes ${start}-${end - 1} are outside the object (${size} bytes)`);
    }
    return resumable(start, end, pin, null);
  };

  const read = async (start: number, end: number): Promise<Buffer> => collect(await stream(start, end));

  return { source: { url, size, read, stream }, tail };
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}
