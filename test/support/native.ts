import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipDir } from './archive';
import { scratch, type Scratch } from './function';
import { ROOT } from './paths';
import { LocalS3 } from './s3';
import { zigCc } from './zig';

const SRC = join(ROOT, 'test', 'fixtures', 'native');
export const PYTHON = '/usr/bin/python3';
const MiB = 1024 * 1024;

/**
 * Lays out, under `root`, what a user's archive of native code looks like:
 *   fancy/__init__.py
 *   fancy/_native.so    CPython extension (1.5 MiB), DT_NEEDED greet_helper.so + libfar.so, RUNPATH $ORIGIN
 *   fancy/greet_helper.so  beside it, found only through $ORIGIN (small; not named lib*,
 *                       so it is not a library directory for LD_LIBRARY_PATH)
 *   vendor/lib/libfar.so  found only through LD_LIBRARY_PATH (2 MiB)
 *   lib/libabs.so       loaded by absolute original path through the preload library
 * Real code, compiled with zig cc for this machine.
 */
export function buildNativePackage(root: string, work: string): void {
  mkdirSync(work, { recursive: true });
  // Debian's pyconfig.h includes <x86_64-linux-gnu/python3.11/pyconfig.h>.
  const inc = join(work, 'inc');
  mkdirSync(inc, { recursive: true });
  try {
    symlinkSync('/usr/include/x86_64-linux-gnu', join(inc, 'x86_64-linux-gnu'));
  } catch {
    /* already there */
  }
  const shared = ['-shared', '-fPIC'];
  const greet = zigCc(join(root, 'fancy', 'greet_helper.so'), [...shared, '-Wl,-soname,greet_helper.so', join(SRC, 'greet.c')]);
  zigCc(join(root, 'vendor', 'lib', 'libfar.so'), [...shared, `-DPAD_BYTES=${2 * MiB}`, '-Wl,-soname,libfar.so', join(SRC, 'far.c')]);
  zigCc(join(root, 'lib', 'libabs.so'), [...shared, '-Wl,-soname,libabs.so', join(SRC, 'abs.c')]);
  zigCc(join(root, 'fancy', '_native.so'), [...shared, '-I/usr/include/python3.11', `-I${inc}`, `-DPAD_BYTES=${1.5 * MiB}`,
    join(SRC, 'native.c'), greet, `-L${join(root, 'vendor', 'lib')}`, '-lfar', '-Wl,-rpath,$ORIGIN']);
  writeFileSync(join(root, 'fancy', '__init__.py'), '"""A package that exists only in the archive."""\n');
}

/**
 * A local S3 server holding the package above as `s3://<bucket>/native.zip`, with a scratch
 * directory for whatever else a suite builds: what most end-to-end suites start from.
 */
export class NativeArchiveBucket {
  private constructor(readonly s3: LocalS3, readonly work: Scratch, readonly bucket: string, readonly zipPath: string) {}

  static async start(bucket: string, prefix: string): Promise<NativeArchiveBucket> {
    const work = scratch(prefix);
    const s3 = await new LocalS3().start();
    await s3.createBucket(bucket);
    const pkg = join(work.dir, 'pkg');
    buildNativePackage(pkg, join(work.dir, 'build'));
    const zipPath = join(work.dir, 'native.zip');
    await s3.put(bucket, 'native.zip', zipDir(pkg, zipPath));
    return new NativeArchiveBucket(s3, work, bucket, zipPath);
  }

  /** The function environment that loads `key` from this bucket through the layer's wrapper. */
  env(key = 'native.zip', extra: Record<string, string> = {}): Record<string, string> {
    return { AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh', ...this.s3.env(), SNAPLOADER_SOURCE: `s3://${this.bucket}/${key}`, ...extra };
  }

  async stop(): Promise<void> {
    await this.s3.stop();
    this.work.cleanup();
  }
}
