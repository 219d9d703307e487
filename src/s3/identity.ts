/**
 * One version of one object: what every response must agree on, so that bytes of two
 * versions are never mixed, and that each response holds exactly the bytes asked for.
 */
import type { GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { SourceError } from '../errors';
import { changed } from './failures';

export interface Identity {
  size: number;
  etag: string | null;
  versionId: string | null;
  lastModified: number | null;
}

/** A response's object identity and the first and last byte it holds. */
export function identityOf(res: GetObjectCommandOutput): { id: Identity; first: number; last: number } {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.ContentRange ?? '');
  const length = Number(res.ContentLength ?? -1);
  const size = m ? Number(m[3]) : length;
  return {
    id: { size, etag: res.ETag ?? null, versionId: res.VersionId ?? null, lastModified: res.LastModified?.getTime() ?? null },
    first: m ? Number(m[1]) : 0,
    last: m ? Number(m[2]) : length - 1,
  };
}

/** Checks a response is the same version of the object and exactly the bytes [start, end). */
export function checkResponse(res: GetObjectCommandOutput, pin: Identity, start: number, end: number, url: string): void {
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
}
