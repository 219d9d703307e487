/**
 * A real native package from PyPI that this machine does not have: onnxruntime (and the numpy
 * it imports), installed with pip install --target into the archive, imported at module init
 * and run in the handler, in the Lambda sandbox through the real emulator and awslambdaric.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { zipDir } from './support/archive';
import { scratch } from './support/function';
import { json, withFunction } from './support/lambda';
import { requireBuilt, ROOT } from './support/paths';
import { pipTarget } from './support/runtime-deps';
import { LocalS3 } from './support/s3';

const TASK = join(ROOT, 'test', 'fixtures', 'onnxruntime');
const TREE = '/tmp/snaploader';
let s3: LocalS3;
let work: ReturnType<typeof scratch>;

beforeAll(async () => {
  requireBuilt();
  work = scratch('onnx');
  const site = pipTarget('onnxruntime', join(TASK, 'requirements.txt'));
  s3 = await new LocalS3().start();
  await s3.createBucket('ml-models');
  await s3.put('ml-models', 'onnxruntime.zip', zipDir(site, join(work.dir, 'onnxruntime.zip')));
}, 600000);

afterAll(async () => {
  await s3?.stop();
  work?.cleanup();
});

test('onnxruntime and numpy are nowhere in the sandbox but the archive: without the layer the init fails', async () => {
  expect(existsSync('/usr/lib/python3/dist-packages/onnxruntime')).toBe(false);
  await withFunction({ handler: 'onnx_handler.handler', task: TASK }, async (fn) => {
    const out = json(await fn.invoke({ x: [0] }));
    expect(out.errorType).toBe('Runtime.ImportModuleError');
    expect(out.errorMessage).toMatch(/No module named 'numpy'/); // the handler's first import
  });
});

test('imported at module init from the archive, it runs a model in the handler, its extension module mapped from a memfd', async () => {
  await withFunction({ handler: 'onnx_handler.handler', task: TASK, memoryMb: 2048, env: {
    AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh', ...s3.env(), SNAPLOADER_SOURCE: 's3://ml-models/onnxruntime.zip',
  } }, async (fn) => {
    const x = Array.from({ length: 60 }, (_, i) => (i - 30) / 10);
    const out = json(await fn.invoke({ x }));
    expect(out.onnxruntime).toBe(`${TREE}/onnxruntime/__init__.py`);
    expect(out.version).toBe('1.32.0');
    // sigmoid(-3.0), sigmoid(-2.9), sigmoid(-2.8)
    const y = out.y as number[];
    expect(y).toHaveLength(3);
    x.slice(0, 3).forEach((v, i) => expect(y[i]).toBeCloseTo(1 / (1 + Math.exp(-v)), 5)); // float32

    // The 37 MB extension module is mapped from a memfd; nothing of onnxruntime from anywhere but the archive.
    const maps = out.maps as string[];
    expect(maps).toContain('/memfd:onnxruntime_pybind11_state.cpython-311-x86_64-linux-gnu.so (deleted)');
    expect(maps.filter((m) => !m.startsWith('/memfd:') && !m.startsWith(`${TREE}/`))).toEqual([]);
    expect(fn.snaploaderLog()).toEqual([expect.stringMatching(/^snaploader: loaded \d+ files \(\d+\.\d MiB\) from s3:\/\/ml-models\/onnxruntime\.zip in /)]);
  });
});
