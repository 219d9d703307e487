import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// s3rver ships no types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver');

// The test process's own SDK client runs on the machine's Node; its upgrade notice is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
export const REGION = 'us-east-1';

/** A real S3-compatible server (s3rver) on loopback, with its own directory. */
export class LocalS3 {
  private server: { run(): Promise<{ port: number }>; close(): Promise<void> } | null = null;
  private dir = '';
  endpoint = '';
  client!: S3Client;

  async start(): Promise<this> {
    this.dir = mkdtempSync(join(tmpdir(), 'snaploader-s3-'));
    this.server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: this.dir });
    const { port } = await this.server!.run();
    this.endpoint = `http://127.0.0.1:${port}`;
    this.client = new S3Client({ endpoint: this.endpoint, region: REGION, forcePathStyle: true, credentials: CREDENTIALS });
    return this;
  }

  async createBucket(bucket: string): Promise<void> {
    await this.client.send(new CreateBucketCommand({ Bucket: bucket }));
  }

  async put(bucket: string, key: string, body: Buffer): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  }

  /** The environment an init program needs to reach this server, as Lambda would give it. */
  env(): Record<string, string> {
    return {
      AWS_ENDPOINT_URL_S3: this.endpoint,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    };
  }

  async stop(): Promise<void> {
    this.client?.destroy();
    await this.server?.close();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
