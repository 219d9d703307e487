/**
 * A real-world native library: Debian's python3-numpy and its DT_NEEDED tree (BLAS, LAPACK,
 * libgfortran, libquadmath), packed into an archive and imported through the layer while
 * the system copies are hidden in a private mount namespace.
 */
import { cpSync, existsSync, mkdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { zipDir } from './support/archive';
import { pythonArgv, result, scratch, TASK_ROOT } from './support/function';
import { requireBuilt, WRAPPER } from './support/paths';
import { baseEnv, run } from './support/run';
import { LocalS3 } from './support/s3';

const SYSTEM_NUMPY = '/usr/lib/python3/dist-packages/numpy';
const LIBDIR = '/usr/lib/x86_64-linux-gnu';
const LIBS = ['libblas.so.3', 'liblapack.so.3', 'libgfortran.so.5', 'libquadmath.so.0'];
// Hides every system copy: tmpfs over the directories, /dev/null over single files.
const HIDE = [
  'mount -t tmpfs tmpfs /usr/lib/python3/dist-packages',
  'mount -t tmpfs tmpfs /usr/lib/python3.11/dist-packages',
  `mount -t tmpfs tmpfs ${LIBDIR}/blas`,
  `mount -t tmpfs tmpfs ${LIBDIR}/lapack`,
  `mount --bind /dev/null ${realpathSync(join(LIBDIR, 'libgfortran.so.5'))}`,
  `mount --bind /dev/null ${realpathSync(join(LIBDIR, 'libquadmath.so.0'))}`,
].join(' && ');

let s3: LocalS3;
let work: ReturnType<typeof scratch>;

/** Runs argv in a private mount namespace with the system numpy and its libraries hidden. */
function hidden(argv: string[], env: Record<string, string>) {
  return run(['-m', '--propagation', 'private', '--', '/bin/sh', '-c', `${HIDE} && exec "$@"`, 'sh', ...argv], baseEnv({ LAMBDA_TASK_ROOT: TASK_ROOT, ...env }), { command: 'unshare' });
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
  const r = await hidden([...pythonArgv('numpy_handler.handler')], {});
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/ModuleNotFoundError: No module named 'numpy'/);
});

test('numpy and its BLAS/LAPACK/gfortran tree load from the archive and compute', async () => {
  const target = join(work.dir, 'tree');
  const r = await hidden([WRAPPER, ...pythonArgv('numpy_handler.handler')], {
    ...s3.env(),
    SNAPLOADER_SOURCE: 's3://ml-models/numpy.zip',
    SNAPLOADER_TARGET_DIR: target,
  });
  const out = result(r);
  expect(out.numpy).toBe(join(target, 'numpy', '__init__.py'));
  expect(out.solve).toEqual([2, 3]);
  expect(out.dot).toBe(145);
  // Libraries over the memfd threshold are mapped from memfds; the rest from the tree.
  const maps = out.maps as string[];
  expect(maps.some((m) => m.startsWith('/memfd:_multiarray_umath'))).toBe(true);
  for (const lib of ['libblas', 'liblapack', 'libgfortran', 'libquadmath']) {
    expect(maps.some((m) => m.includes(lib) && (m.startsWith('/memfd:') || m.startsWith(target)))).toBe(true);
  }
  expect(maps.filter((m) => m.startsWith(LIBDIR) || m.startsWith('/lib/'))).toEqual([]);
});
