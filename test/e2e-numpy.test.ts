/**
 * A real-world native library: Debian's python3-numpy and its DT_NEEDED tree (BLAS, LAPACK,
 * libgfortran, libquadmath), packed into an archive and imported through the layer while
 * the system copies are hidden in a private mount namespace.
 */
import { cpSync, existsSync, mkdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { zipDir } from './support/archive';
import { scratch, TASK_ROOT } from './support/function';
import { json, withFunction, type FunctionConfig } from './support/lambda';
import { requireBuilt } from './support/paths';
import { LocalS3 } from './support/s3';

const SYSTEM_NUMPY = '/usr/lib/python3/dist-packages/numpy';
const LIBDIR = '/usr/lib/x86_64-linux-gnu';
const LIBS = ['libblas.so.3', 'liblapack.so.3', 'libgfortran.so.5', 'libquadmath.so.0'];
const TREE = '/tmp/snaploader';
// Every system copy, masked inside the sandbox: directories under an empty tmpfs, files under /dev/null.
const HIDE = [
  '/usr/lib/python3/dist-packages',
  '/usr/lib/python3.11/dist-packages',
  `${LIBDIR}/blas`,
  `${LIBDIR}/lapack`,
  realpathSync(join(LIBDIR, 'libgfortran.so.5')),
  realpathSync(join(LIBDIR, 'libquadmath.so.0')),
];

let s3: LocalS3;
let work: ReturnType<typeof scratch>;

function numpyFunction(env: Record<string, string>): FunctionConfig {
  return { handler: 'numpy_handler.handler', task: TASK_ROOT, hide: HIDE, env };
}

beforeAll(async () => {
  requireBuilt();
  if (!existsSync(SYSTEM_NUMPY)) throw new Error(`${SYSTEM_NUMPY} is missing: install python3-numpy (make install does)`);
  work = scratch('numpy');
  const pkg = join(work.dir, 'pkg');
  cpSync(SYSTEM_NUMPY, join(pkg, 'numpy'), { recursive: true });
  mkdirSync(join(pkg, 'lib'));
  for (const lib of LIBS) cpSync(realpathSync(join(LIBDIR, lib)), join(pkg, 'lib', lib));
  s3 = await new LocalS3().start();
  await s3.createBucket('ml-models');
  await s3.put('ml-models', 'numpy.zip', zipDir(pkg, join(work.dir, 'numpy.zip')));
}, 180000);

afterAll(async () => {
  await s3?.stop();
  work?.cleanup();
});

test('with the system copies hidden, numpy is not importable without the layer', async () => {
  await withFunction(numpyFunction({}), async (fn) => {
    const out = json(await fn.invoke());
    expect(out.errorType).toBe('ModuleNotFoundError');
    expect(out.errorMessage).toMatch(/No module named 'numpy'/);
  });
});

test('numpy and its BLAS/LAPACK/gfortran tree load from the archive and compute', async () => {
  await withFunction(numpyFunction({ AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh', ...s3.env(), SNAPLOADER_SOURCE: 's3://ml-models/numpy.zip' }), async (fn) => {
    const out = json(await fn.invoke());
    expect(out.numpy).toBe(`${TREE}/numpy/__init__.py`);
    expect(out.solve).toEqual([2, 3]);
    expect(out.dot).toBe(145);
    // Libraries over the memfd threshold are mapped from memfds; the rest from the tree.
    const maps = out.maps as string[];
    expect(maps.some((m) => m.startsWith('/memfd:_multiarray_umath'))).toBe(true);
    for (const lib of ['libblas', 'liblapack', 'libgfortran', 'libquadmath']) {
      expect(maps.some((m) => m.includes(lib) && (m.startsWith('/memfd:') || m.startsWith(TREE)))).toBe(true);
    }
    expect(maps.filter((m) => m.startsWith(LIBDIR) || m.startsWith('/lib/'))).toEqual([]);
  });
});
