/** The Lambda runtimes `pack` knows: what their layer layout is and which bytecode they load. */
import { UsageError } from './errors';

export interface Runtime {
  name: string;
  family: 'python' | 'nodejs' | 'java';
  /** Where a layer puts libraries for this runtime (the `layer` layout's prefix). */
  layerPrefix: string;
  /** Python: `cpython-312`, the tag in __pycache__ file names. */
  cacheTag?: string;
  /** Python: the first two bytes of its .pyc files, little-endian. */
  pycMagic?: number;
  /** Python: `3.12`, for pip's --python-version. */
  pythonVersion?: string;
  /** The newest manylinux glibc the runtime's OS has (Amazon Linux 2: 2.26, 2023: 2.34). */
  glibcMinor?: number;
}

// importlib.util.MAGIC_NUMBER of each CPython version.
const PYTHONS: Record<string, { magic: number; glibcMinor: number }> = {
  '3.9': { magic: 3425, glibcMinor: 26 },
  '3.10': { magic: 3439, glibcMinor: 26 },
  '3.11': { magic: 3495, glibcMinor: 26 },
  '3.12': { magic: 3531, glibcMinor: 34 },
  '3.13': { magic: 3571, glibcMinor: 34 },
};

export const RUNTIME_NAMES = [...Object.keys(PYTHONS).map((v) => `python${v}`), 'nodejs20.x', 'nodejs22.x', 'java17', 'java21'];

export function runtimeNamed(name: string): Runtime {
  const py = /^python(3\.\d+)$/.exec(name);
  if (py && PYTHONS[py[1]]) {
    const v = py[1];
    return {
      name, family: 'python', layerPrefix: 'python/', cacheTag: `cpython-${v.replace('.', '')}`,
      pycMagic: PYTHONS[v].magic, pythonVersion: v, glibcMinor: PYTHONS[v].glibcMinor,
    };
  }
  if (/^nodejs(20|22)\.x$/.test(name)) return { name, family: 'nodejs', layerPrefix: 'nodejs/node_modules/' };
  if (/^java(17|21)$/.test(name)) return { name, family: 'java', layerPrefix: 'java/lib/' };
  throw new UsageError(`snaploader pack: --runtime must be one of ${RUNTIME_NAMES.join(', ')}, not ${JSON.stringify(name)}`);
}
