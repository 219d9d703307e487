/**
 * Resource limits end to end: /tmp filling up mid-write, and an archive that does not fit
 * the function's memory and /tmp. Each ends in one clear line, before the runtime starts.
 */
import { existsSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';
import { rawZip, rawZipBuffer } from './support/archive';
import { TASK_ROOT } from './support/function';
import { LambdaFunction, type FunctionConfig } from './support/lambda';
import { NativeArchiveBucket } from './support/native';
import { requireBuilt } from './support/paths';
import type { LocalS3 } from './support/s3';

let archive: NativeArchiveBucket;
let s3: LocalS3;

beforeAll(async () => {
  requireBuilt();
  archive = await NativeArchiveBucket.start('limits', 'limits');
  s3 = archive.s3;
  // One entry big enough to be inflated while it downloads (over 8 MiB), mostly noise.
  const big = Buffer.alloc(12 * 1024 * 1024);
  let x = 1;
  for (let i = 0; i < big.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    big[i] = i % 4 === 0 ? 0 : x >>> 24;
  }
  const deflated = deflateRawSync(big);
  await s3.put('limits', 'big.zip', rawZipBuffer(rawZip([{ name: 'lib/libbig.so', data: deflated, method: 8, compressedSize: deflated.length, uncompressedSize: big.length, crc32: crc32(big) }])));
}, 180000);

afterAll(async () => {
  await archive?.stop();
});

/** Runs the function once in the sandbox; returns its invoke status, snaploader's log lines and whether a tree is left in /tmp. */
async function initOnce(cfg: Partial<FunctionConfig> & { env: Record<string, string> }) {
  const fn = await LambdaFunction.start({ handler: 'handler.handler', task: TASK_ROOT, ...cfg,
    env: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh', ...s3.env(), ...cfg.env } });
  try {
    const r = await fn.invoke();
    return { status: r.status, lines: [...new Set(fn.snaploaderLog())], treeLeft: existsSync(fn.tmpPath('/tmp/snaploader')) };
  } finally {
    await fn.stop();
  }
}

test('/tmp filling up mid-write (ENOSPC) fails with one line saying what to change, and cleans up', async () => {
  const o = await initOnce({ tmpSize: '256k', env: { SNAPLOADER_SOURCE: 's3://limits/native.zip', SNAPLOADER_MEMFD_MIN_SIZE: '1G' } }); // everything to /tmp
  expect(o.status).toBe(502);
  expect(o.lines).toEqual([expect.stringMatching(/^snaploader: WRITE_FAILED: writing "[^"]+" failed: ENOSPC: no space left on device \(\/tmp is full: raise the function's ephemeral storage or lower SNAPLOADER_TMP_BUDGET\)$/)]);
  expect(o.treeLeft).toBe(false);
});

test('/tmp filling up under an entry inflated as it downloads fails the same way, not with SIGBUS', async () => {
  const o = await initOnce({ tmpSize: '4m', env: {
    SNAPLOADER_SOURCE: 's3://limits/big.zip', SNAPLOADER_MEMFD_MIN_SIZE: '1G', SNAPLOADER_TMP_BUDGET: '1G', // to /tmp, past its real size
  } });
  expect(o.status).toBe(502);
  expect(o.lines).toEqual([expect.stringMatching(/^snaploader: WRITE_FAILED: writing "lib\/libbig\.so" failed: ENOSPC: no space left on device \(\/tmp is full: /)]);
  expect(o.treeLeft).toBe(false);
});

test("an archive larger than the function's memory and the /tmp budget is refused before any data is read", async () => {
  const o = await initOnce({ memoryMb: 128, env: { SNAPLOADER_SOURCE: 's3://limits/native.zip', SNAPLOADER_TMP_BUDGET: '1M' } });
  expect(o.status).toBe(502);
  expect(o.lines).toEqual([expect.stringMatching(/^snaploader: BUDGET_EXCEEDED: the archive needs 3\.5 MiB in \/tmp but SNAPLOADER_TMP_BUDGET is 1\.0 MiB \(0 B in 0 files already goes to memory\); 2 large files did not fit SNAPLOADER_MEMORY_BUDGET=0 B/)]);
  expect(o.treeLeft).toBe(false); // failed while planning, before the tree existed
});
