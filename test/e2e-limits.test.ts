/**
 * Resource limits end to end: /tmp filling up mid-write, and an archive that does not fit
 * the function's memory and /tmp. Each ends in one clear line, before the runtime starts.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { rawZip, rawZipBuffer, zipDir } from './support/archive';
import { invokePython, pythonArgv, scratch, TASK_ROOT } from './support/function';
import { buildNativePackage } from './support/native';
import { requireBuilt, WRAPPER } from './support/paths';
import { baseEnv, run } from './support/run';
import { LocalS3 } from './support/s3';

let s3: LocalS3;
let work: ReturnType<typeof scratch>;

beforeAll(async () => {
  requireBuilt();
  work = scratch('limits');
  s3 = await new LocalS3().start();
  await s3.createBucket('limits');
  const pkg = join(work.dir, 'pkg');
  buildNativePackage(pkg, join(work.dir, 'build'));
  await s3.put('limits', 'native.zip', zipDir(pkg, join(work.dir, 'native.zip')));
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
  await s3?.stop();
  work?.cleanup();
});

const lines = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');

/** wrapper.sh -> the Python function, with SNAPLOADER_TARGET_DIR on a tmpfs of `size` in a private mount namespace: a small /tmp. */
async function runWithSmallTmp(name: string, size: string, env: Record<string, string>): Promise<ReturnType<typeof run>> {
  const small = join(work.dir, name);
  mkdirSync(small);
  return run(['-m', '--propagation', 'private', '--', '/bin/sh', '-c', `mount -t tmpfs -o size=${size} tmpfs ${small} && exec "$@"`, 'sh',
    WRAPPER, ...pythonArgv('handler.handler')], baseEnv({
    LAMBDA_TASK_ROOT: TASK_ROOT, ...s3.env(), SNAPLOADER_TARGET_DIR: join(small, 'tree'),
    SNAPLOADER_MEMFD_MIN_SIZE: '1G', // everything to /tmp
    ...env,
  }), { command: 'unshare' });
}

test('/tmp filling up mid-write (ENOSPC) fails with one line saying what to change, and cleans up', async () => {
  const r = await runWithSmallTmp('small-tmp', '256k', { SNAPLOADER_SOURCE: 's3://limits/native.zip' });
  expect(r.code).toBe(1);
  expect(r.stdout).not.toContain('RESULT');
  expect(lines(r.stderr)).toEqual([expect.stringMatching(/^snaploader: WRITE_FAILED: writing "[^"]+" failed: ENOSPC: no space left on device \(\/tmp is full: raise the function's ephemeral storage or lower SNAPLOADER_TMP_BUDGET\)$/)]);
});

test('/tmp filling up under an entry inflated as it downloads fails the same way, not with SIGBUS', async () => {
  const r = await runWithSmallTmp('small-tmp-big', '4m', {
    SNAPLOADER_SOURCE: 's3://limits/big.zip', SNAPLOADER_TMP_BUDGET: '1G', // to /tmp, past its real size
  });
  expect(r.code).toBe(1);
  expect(lines(r.stderr)).toEqual([expect.stringMatching(/^snaploader: WRITE_FAILED: writing "lib\/libbig\.so" failed: ENOSPC: no space left on device \(\/tmp is full: /)]);
});

test("an archive larger than the function's memory and the /tmp budget is refused before any data is read", async () => {
  const env = { ...s3.env(), SNAPLOADER_SOURCE: 's3://limits/native.zip', SNAPLOADER_TARGET_DIR: join(work.dir, 'big', 'tree'),
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128', SNAPLOADER_TMP_BUDGET: '1M' };
  const r = await invokePython('handler.handler', env);
  expect(r.code).toBe(1);
  expect(lines(r.stderr)).toEqual([expect.stringMatching(/^snaploader: BUDGET_EXCEEDED: the archive needs 3\.5 MiB in \/tmp but SNAPLOADER_TMP_BUDGET is 1\.0 MiB \(0 B in 0 files already goes to memory\); 2 large files did not fit SNAPLOADER_MEMORY_BUDGET=0 B/)]);
  expect(existsSync(join(work.dir, 'big'))).toBe(false); // failed while planning, before the tree existed
});
