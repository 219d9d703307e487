/**
 * What a failed S3 read means, and whether it is worth another attempt.
 *
 * - Final failures become our typed errors: 403 (SOURCE_ACCESS_DENIED), 404 (SOURCE_NOT_FOUND),
 *   412 and a different object (SOURCE_CHANGED), a bucket in another region
 *   (SOURCE_WRONG_REGION), a missing region (CONFIG_INVALID), anything unexpected (SOURCE_ERROR).
 * - Transient ones (5xx and SlowDown, 429, 408, connection errors, stalls, bodies cut short)
 *   are retried with exponential backoff and jitter, a bounded number of times; when the
 *   attempts run out they become SOURCE_STALLED, SOURCE_UNAVAILABLE or SOURCE_UNREACHABLE.
 */
import { ConfigError, SourceError } from '../errors';

export const RETRY_DEFAULTS = { maxAttempts: 5, retryBaseMs: 100, retryMaxMs: 2000 };
/** A read may resume at most this many times maxAttempts in all, even when every attempt makes progress. */
const MAX_REQUESTS_FACTOR = 4;
const THROTTLE_FACTOR = 4;

export interface RetryPolicy {
  /** Attempts per read that may fail in a row without delivering a byte. */
  maxAttempts: number;
  /** Backoff before attempt n+1 is about base * 2^(n-1) ms with jitter, at most retryMaxMs (4x for 503 SlowDown). */
  retryBaseMs: number;
  retryMaxMs: number;
}

/** A failure worth another attempt. `kind` picks the message if the attempts run out. */
export class Transient extends Error {
  constructor(readonly kind: 'stall' | 'network' | 'server' | 'short', readonly detail: string, readonly throttled = false) {
    super(detail);
  }
}

/** What the SDK's errors (and the body streams' own) may carry. */
export type SdkError = {
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

/** Node's codes for a server certificate it refused (openssl's verify errors, and a name that does not match). */
const CERTIFICATE_CODES = /^(ERR_TLS_CERT_ALTNAME_INVALID|[A-Z_]*CERT[A-Z_]*|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/;

/** An endpoint that is not the S3 it should be (a refused certificate, an answer that is not HTTP/1.1): final, with what to check. */
function endpointProblem(e: SdkError, url: string): SourceError | null {
  const code = e.code ?? e.cause?.code ?? '';
  if (CERTIFICATE_CODES.test(code)) {
    return new SourceError('SOURCE_ERROR', `${url}: the endpoint's TLS certificate was refused (${code}: ${e.message}): ` +
      'check AWS_ENDPOINT_URL_S3; for an endpoint with a private certificate authority, set NODE_EXTRA_CA_CERTS to its certificate file');
  }
  if (code.startsWith('HPE_')) {
    return new SourceError('SOURCE_ERROR', `${url}: the endpoint did not answer in HTTP/1.1 as S3 does (${e.message}): check AWS_ENDPOINT_URL_S3`);
  }
  return null;
}

/** The connection error an error stands for, if it is one. */
export function networkCode(e: SdkError): string | undefined {
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
export function classify(err: unknown, url: string, bucket: string, key: string, askedRegion: string): Error {
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
  const endpoint = endpointProblem(e, url);
  if (endpoint) return endpoint;
  return new SourceError('SOURCE_ERROR', `reading ${url} failed: ${status ? `HTTP ${status} ` : ''}${name ? `${name}: ` : ''}${e.message ?? String(err)}`);
}

/**
 * A 416 for `range`: on the first request (nothing pinned yet) the object is empty; later, it
 * is now shorter than it was. Null for any other error.
 */
export function invalidRange(err: unknown, url: string, range: string, pinned: boolean): SourceError | null {
  const e = err as SdkError;
  if (e.name !== 'InvalidRange' && e.$metadata?.httpStatusCode !== 416) return null;
  if (pinned) return changed(url, `${range} is no longer inside it (416 InvalidRange)`);
  return new SourceError('SOURCE_ERROR', `${url} is empty (0 bytes), not a zip archive: upload the archive again`);
}

/** A response body that ended early (`failure` null) or failed on its own: the connection broke. */
export function brokenBody(failure: unknown, got: string): Transient {
  if (failure === null) return new Transient('short', `the body ended after ${got}`);
  const e = failure as SdkError;
  return new Transient('short', `${networkCode(e) ?? e.message ?? String(failure)} after ${got}`);
}

export function changed(url: string, how: string): SourceError {
  return new SourceError('SOURCE_CHANGED', `${url} was replaced while it was being read (${how}): upload new archives under a new key, or retry`);
}

export function timeoutError(what: string, last: Transient | null): SourceError {
  return new SourceError('SOURCE_TIMEOUT', `reading ${what} did not finish before the deadline${last ? ` (last failure: ${last.detail})` : ''}: ` +
    'the network to S3 is too slow or failing (raise SNAPLOADER_TIMEOUT if it is just slow)');
}

/** One read's attempts: how many, how many failed in a row, the last failure. */
export interface Attempts {
  /** The object and the bytes, for messages. */
  what: string;
  /** The bytes alone. */
  bytes: string;
  requests: number;
  inARow: number;
  last: Transient | null;
}

/**
 * Counts a transient failure against the read's attempts (a failure after progress starts a
 * new row). Returns the backoff to wait before the next attempt, or null when the attempts
 * are used up.
 */
export function backoffAfter(a: Attempts, t: Transient, progressed: boolean, policy: RetryPolicy): number | null {
  a.last = t;
  a.inARow = progressed ? 1 : a.inARow + 1;
  if (a.inARow >= policy.maxAttempts || a.requests >= policy.maxAttempts * MAX_REQUESTS_FACTOR) return null;
  const factor = t.throttled ? THROTTLE_FACTOR : 1;
  const cap = Math.min(policy.retryMaxMs * factor, policy.retryBaseMs * factor * 2 ** (a.inARow - 1));
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
}

/** The final error for a read whose attempts ran out on `t`. */
export function giveUp(a: Attempts, t: Transient, url: string): SourceError {
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
}
