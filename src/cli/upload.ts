/**
 * `pack --upload s3://bucket/key`: the SDK's multipart upload helper (@aws-sdk/lib-storage),
 * with a progress bar. Credentials, region and endpoint come from the AWS SDK's usual
 * sources (environment, profiles, AWS_ENDPOINT_URL_S3).
 */
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream, statSync } from 'node:fs';
import { s3EndpointFromEnv } from '../s3/endpoint';
import { CliError, EXIT } from './errors';
import type { Output } from './output';

export interface Uploaded {
  bucket: string;
  key: string;
  versionId: string | null;
  etag: string | null;
}

function explain(err: unknown, bucket: string, key: string): CliError {
  const e = err as { name?: string; Code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e.name ?? e.Code ?? '';
  const status = e.$metadata?.httpStatusCode;
  let why: string;
  if (name === 'NoSuchBucket' || (status === 404 && !name)) why = `bucket ${bucket} does not exist: create it, or check the name and AWS_REGION`;
  else if (name === 'AccessDenied' || status === 403) why = `access denied: the credentials need s3:PutObject on arn:aws:s3:::${bucket}/${key}`;
  else if (name === 'PermanentRedirect' || status === 301) why = `bucket ${bucket} is in another region: set AWS_REGION to it`;
  else why = `${name ? `${name}: ` : ''}${e.message ?? String(err)}`;
  return new CliError('UPLOAD_FAILED', `upload to s3://${bucket}/${key} failed: ${why}`, EXIT.UPLOAD);
}

export async function upload(path: string, bucket: string, key: string, sha256: string, out: Output): Promise<Uploaded> {
  const endpoint = s3EndpointFromEnv(process.env);
  const client = new S3Client({ forcePathStyle: endpoint !== undefined, region: process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || undefined });
  const size = statSync(path).size;
  const progress = out.progress(`uploading s3://${bucket}/${key}`, size);
  try {
    const up = new Upload({
      client,
      params: {
        Bucket: bucket, Key: key, Body: createReadStream(path), ContentType: 'application/zip',
        // Readable in the console and by `aws s3api head-object`: what SNAPLOADER_SHA256 should be.
        Metadata: { 'snaploader-sha256': sha256 },
      },
      partSize: 16 * 1024 * 1024,
      queueSize: 4,
    });
    up.on('httpUploadProgress', (p) => progress.update(p.loaded ?? 0));
    const res = await up.done();
    return { bucket, key, versionId: res.VersionId ?? null, etag: res.ETag ?? null };
  } catch (err) {
    throw explain(err, bucket, key);
  } finally {
    progress.stop();
    client.destroy();
  }
}
