/**
 * Python multiprocessing on Lambda, which has no /dev/shm: Queue, Lock, Pool.map,
 * Manager().dict(), SharedMemory shared with a child and ProcessPoolExecutor, with every start
 * method Python offers on Linux, in a function in the Lambda sandbox (no /dev/shm, an
 * unprivileged user) through the emulator and awslambdaric. With the layer attached and no
 * archive (the wrapper only preloads the library), with an archive, and without the layer (the
 * control, which must fail).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { json, withFunction, type LambdaFunction } from './support/lambda';
import { NativeArchiveBucket } from './support/native';
import { requireBuilt, ROOT } from './support/paths';

const TASK = join(ROOT, 'test', 'fixtures', 'shm');
const METHODS = ['fork', 'spawn', 'forkserver'];
const PARTS = ['queue_round_trip', 'lock_counts', 'pool_map', 'manager_dict', 'shared_memory_with_child', 'process_pool_executor'];
const ALL_OK = Object.fromEntries(PARTS.map((p) => [p, 'ok']));
const WRAPPER_ENV = { AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh' };
let archive: NativeArchiveBucket;

beforeAll(async () => {
  requireBuilt();
  archive = await NativeArchiveBucket.start('functions', 'mp');
}, 180000);

afterAll(async () => {
  await archive?.stop();
});

/** One result per start method, from one function (one init, an invoke per method). */
async function perMethod(fn: LambdaFunction): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  for (const method of METHODS) out[method] = json(await fn.invoke({ method })) as Record<string, string>;
  return out;
}

test('without the layer (the control), every part that needs /dev/shm fails, with every start method', async () => {
  await withFunction({ handler: 'mp_handler.handler', task: TASK }, async (fn) => {
    const out = await perMethod(fn);
    for (const method of METHODS) {
      for (const part of PARTS.filter((p) => p !== 'manager_dict')) expect([method, part, out[method][part]]).toEqual([method, part, expect.stringMatching(/^fail /)]);
    }
  });
});

test('with the layer and no archive, every part works with every start method, and nothing is left behind', async () => {
  await withFunction({ handler: 'mp_handler.handler', task: TASK, env: WRAPPER_ENV }, async (fn) => {
    const out = await perMethod(fn);
    expect(out).toEqual(Object.fromEntries(METHODS.map((m) => [m, ALL_OK])));
    expect(fn.snaploaderLog()).toEqual([]);
    expect(readdirSync(fn.tmpPath('/tmp/snaploader-shm'))).toEqual([]);
  });
});

test('with an archive loaded too, every part works with every start method', async () => {
  await withFunction({ handler: 'mp_handler.handler', task: TASK, env: archive.env() }, async (fn) => {
    const out = await perMethod(fn);
    expect(out).toEqual(Object.fromEntries(METHODS.map((m) => [m, ALL_OK])));
    expect(fn.snaploaderLog()).toEqual([expect.stringMatching(/^snaploader: loaded 5 files /)]);
  });
});
