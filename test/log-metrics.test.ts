/**
 * The numbers behind SNAPLOADER_METRICS=emf's Requests and Retries: the S3 reader's own
 * counters, against what the fault proxy in front of a local S3 server saw.
 */
import { randomBytes } from 'node:crypto';
import { FaultProxy, S3_ERRORS } from './support/fault-proxy';
import { CREDENTIALS, LocalS3, REGION } from './support/s3';
import { openS3Source } from '../src/s3/source';

const BUCKET = 'counted';
const SIZE = 2 * 1024 * 1024;
let s3: LocalS3;
let proxy: FaultProxy;

beforeAll(async () => {
  s3 = await new LocalS3().start();
  await s3.createBucket(BUCKET);
  proxy = await new FaultProxy(s3.endpoint, { upstreamClient: s3.client }).start();
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_S3: proxy.endpoint, AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
  });
});

afterAll(async () => {
  await proxy?.stop();
  await s3?.stop();
});

test('every GET sent is counted, and every retry: a reset body and a 503 are two retries of one range', async () => {
  const data = randomBytes(SIZE);
  await s3.put(BUCKET, 'object.bin', data);
  proxy.reset([
    { when: { ranged: true }, action: { kind: 'reset', afterBytes: 1000 } },
    { when: { ranged: true }, action: S3_ERRORS.slowDown },
  ]);
  const { source } = await openS3Source({ bucket: BUCKET, key: 'object.bin', forcePathStyle: true, maxSockets: 4, idleTimeoutMs: 2000, retryBaseMs: 10 }, 4096);
  expect(source.counts).toEqual({ gets: 1, retries: 0 });
  const got = await source.read(0, SIZE - 4096);
  expect(got.equals(data.subarray(0, SIZE - 4096))).toBe(true);
  expect(source.counts).toEqual({ gets: proxy.gets().length, retries: 2 });
  expect(proxy.gets()).toHaveLength(4); // the tail, then the range three times
});
