/**
 * The S3 reader on its own, through the fault proxy to a local S3 server: exact bytes through
 * repeated interruptions, early close, the deadline, and one final failure stopping every read.
 */
import { randomBytes } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { FaultProxy, S3_ERRORS } from './support/fault-proxy';
import { CREDENTIALS, LocalS3, REGION } from './support/s3';
import { envCredentials } from '../src/s3/credentials';
import { openS3Source, type S3SourceOptions } from '../src/s3/source';
import { SourceError } from '../src/errors';

const BUCKET = 'reader';
const SIZE = 3 * 1024 * 1024 + 12345;
const TAIL = 64 * 1024;
let s3: LocalS3;
let proxy: FaultProxy;
const data = randomBytes(SIZE);
let keyNo = 0;

beforeAll(async () => {
  s3 = await new LocalS3().start();
  await s3.createBucket(BUCKET);
  proxy = await new FaultProxy(s3.endpoint, { upstreamClient: s3.client }).start();
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_S3: proxy.endpoint,
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
  });
});

afterAll(async () => {
  await proxy?.stop();
  await s3?.stop();
});

async function fresh(body = data): Promise<string> {
  const key = `object-${++keyNo}.bin`;
  await s3.put(BUCKET, key, body);
  return key;
}

function options(key: string, extra: Partial<S3SourceOptions> = {}): S3SourceOptions {
  return { bucket: BUCKET, key, forcePathStyle: true, maxSockets: 8, idleTimeoutMs: 300, ...extra };
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

async function failure(p: Promise<unknown>): Promise<SourceError> {
  try {
    await p;
  } catch (err) {
    return err as SourceError;
  }
  throw new Error('expected a failure');
}

test('no faults: the tail and any range are the object\'s bytes', async () => {
  const key = await fresh();
  proxy.reset();
  const { source, tail } = await openS3Source(options(key), TAIL);
  expect(source.size).toBe(SIZE);
  expect(tail.equals(data.subarray(SIZE - TAIL))).toBe(true);
  expect((await source.read(1000, 900000)).equals(data.subarray(1000, 900000))).toBe(true);
  expect((await source.read(5, 5)).length).toBe(0);
  // Every read after the first is pinned to the first ETag.
  const [firstGet, ...later] = proxy.gets();
  expect(firstGet.ifMatch).toBeUndefined();
  expect(later.every((e) => e.ifMatch === firstGet.etag)).toBe(true);
});

test('a range that is reset, cut short and stalled over and over still yields exactly its bytes, resumed with Range + If-Match', async () => {
  const key = await fresh();
  proxy.reset([
    { when: { ranged: true }, action: { kind: 'reset', afterBytes: 100000 } },
    { when: { ranged: true }, action: { kind: 'truncate', afterBytes: 70000 } },
    { when: { ranged: true }, action: { kind: 'stall', afterBytes: 50000 } },
    { when: { ranged: true }, action: { kind: 'reset', afterBytes: 0 } },
    { when: { ranged: true }, action: { kind: 'refuse' } },
    { when: { ranged: true }, action: { kind: 'hang' } },
    { when: { ranged: true }, action: S3_ERRORS.slowDown },
    { when: { ranged: true }, action: { kind: 'reset', afterBytes: 123457 } },
  ]);
  // Four failures in a row without a byte (reset at 0, refused, no headers, 503): a fifth would give up.
  const { source } = await openS3Source(options(key, { maxAttempts: 6, retryBaseMs: 20 }), TAIL);
  const start = 777;
  const end = SIZE - 1000;
  const got = await collect(await source.stream(start, end));
  expect(got.length).toBe(end - start);
  expect(got.equals(data.subarray(start, end))).toBe(true);
  const ranged = proxy.gets().filter((e) => /^bytes=\d/.test(e.range ?? ''));
  expect(ranged.length).toBe(9);
  // Each request asks for what is still missing, to the same end, pinned to the same version.
  let expectedStart = start;
  for (const e of ranged) {
    expect(e.range).toBe(`bytes=${expectedStart}-${end - 1}`);
    expect(e.ifMatch).toBe(proxy.gets()[0].etag);
    if (e.status === 206) expectedStart += e.bytes;
  }
});

test('a consumer that stops early ends the stream cleanly', async () => {
  const key = await fresh();
  proxy.reset();
  const { source } = await openS3Source(options(key), TAIL);
  const it = (await source.stream(0, SIZE))[Symbol.asyncIterator]();
  const r = await it.next();
  expect(r.done).toBe(false);
  await it.return!(undefined);
  expect((await it.next()).done).toBe(true);
});

test('the deadline abandons a request in flight and starts no new one: SOURCE_TIMEOUT', async () => {
  const key = await fresh();
  proxy.reset([{ when: { ranged: true }, action: { kind: 'stall', afterBytes: 1000 }, times: Infinity }]);
  const { source } = await openS3Source(options(key, { idleTimeoutMs: 60000, deadline: Date.now() + 1500 }), TAIL);
  const t0 = Date.now();
  const err = await failure(source.read(0, SIZE));
  expect(err.code).toBe('SOURCE_TIMEOUT');
  expect(err.message).toMatch(/did not finish before the deadline/);
  expect(Date.now() - t0).toBeLessThan(5000);
});

test('a final failure in one read (412) stops the reads in flight at once', async () => {
  const key = await fresh();
  proxy.reset([
    { when: { ranged: true }, action: { kind: 'stall', afterBytes: 1000 } },
    { when: { ranged: true }, action: { kind: 'before', run: () => s3.put(BUCKET, key, randomBytes(SIZE)) } },
  ]);
  const { source } = await openS3Source(options(key, { idleTimeoutMs: 60000 }), TAIL);
  const stalled = failure(source.read(0, 100000));
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  const changed = await failure(source.read(200000, 300000));
  expect(changed.code).toBe('SOURCE_CHANGED');
  expect(await stalled).toBe(changed);
  expect(Date.now() - t0).toBeLessThan(5000);
  // Later reads fail the same way without asking S3.
  const before = proxy.log.length;
  expect(await failure(source.read(0, 10))).toBe(changed);
  expect(proxy.log.length).toBe(before);
});

test('retries are bounded: a range that always fails gives up after maxAttempts with its code', async () => {
  const key = await fresh();
  proxy.reset([{ when: { ranged: true }, action: S3_ERRORS.internal, times: Infinity }]);
  const { source } = await openS3Source(options(key, { maxAttempts: 3, retryBaseMs: 10 }), TAIL);
  const err = await failure(source.read(0, 1000));
  expect(err.code).toBe('SOURCE_UNAVAILABLE');
  expect(err.message).toBe(`S3 answered HTTP 500 InternalError while reading s3://${BUCKET}/${key} bytes 0-999, 3 attempts: S3 is failing; try again later`);
  expect(proxy.gets().filter((e) => e.range === 'bytes=0-999')).toHaveLength(3);
});

test('versionId is sent with every request when pinned', async () => {
  const key = await fresh();
  proxy.reset([{ when: () => true, action: { kind: 'error', status: 404, code: 'NoSuchVersion', message: 'The specified version does not exist.' } }]);
  const err = await failure(openS3Source(options(key, { versionId: 'v123' }), TAIL));
  expect(err.code).toBe('SOURCE_NOT_FOUND');
  expect(proxy.gets()[0].url).toMatch(/[?&]versionId=v123(&|$)/);
});

test('an endpoint that does not answer in HTTP/1.1 is a final SOURCE_ERROR that says to check AWS_ENDPOINT_URL_S3', async () => {
  const odd = net.createServer((s) => s.once('data', () => s.end('ICY 200 OK\r\n\r\n')));
  await new Promise<void>((r) => odd.listen(0, '127.0.0.1', r));
  const saved = process.env.AWS_ENDPOINT_URL_S3;
  process.env.AWS_ENDPOINT_URL_S3 = `http://127.0.0.1:${(odd.address() as AddressInfo).port}`;
  try {
    const err = await failure(openS3Source(options('any.zip'), TAIL));
    expect(err).toBeInstanceOf(SourceError);
    expect(err.code).toBe('SOURCE_ERROR');
    expect(err.message).toMatch(/^s3:\/\/reader\/any\.zip: the endpoint did not answer in HTTP\/1\.1 as S3 does \(Parse Error: invalid status line "ICY 200 OK"\): check AWS_ENDPOINT_URL_S3$/);
  } finally {
    process.env.AWS_ENDPOINT_URL_S3 = saved;
    await new Promise((r) => odd.close(r));
  }
});

describe('credentials from the environment (what Lambda sets), without loading the default chain', () => {
  test('both keys and the session token are taken as they are', () => {
    const c = envCredentials({ AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'token' });
    expect(c).toMatchObject({ accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' });
  });

  test('a missing key leaves it to the default chain', () => {
    expect(envCredentials({ AWS_ACCESS_KEY_ID: 'AKID' })).toBeUndefined();
    expect(envCredentials({ AWS_SECRET_ACCESS_KEY: 'secret' })).toBeUndefined();
  });

  test('AWS_PROFILE wins over keys in the environment, as in the default chain', () => {
    expect(envCredentials({ AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'secret', AWS_PROFILE: 'dev' })).toBeUndefined();
  });

  test('an expiration is passed on as a date', () => {
    const c = envCredentials({ AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'secret', AWS_CREDENTIAL_EXPIRATION: '2030-01-02T03:04:05Z' });
    expect(c?.expiration?.toISOString()).toBe('2030-01-02T03:04:05.000Z');
  });
});
