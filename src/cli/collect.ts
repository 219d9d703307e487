/**
 * What goes into a packed archive: the files, symlinks and empty directories under a
 * directory, with the bytecode of other interpreters left out, placed for the chosen layout,
 * in a stable order (largest files first, then by path).
 */
import { lstatSync, openSync, readdirSync, readlinkSync, readSync, closeSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { CliError, EXIT } from './errors';
import type { Runtime } from './runtimes';

export interface Item {
  /** The path in the archive. */
  name: string;
  /** The path on disk. */
  path: string;
  kind: 'file' | 'symlink' | 'dir';
  size: number;
  mode: number;
  mtime: Date;
  /** A symlink's target, as it is (relative, inside the archive). */
  target?: string;
}

export interface Collected {
  items: Item[];
  /** Bytecode files left out: of another interpreter, or of none the runtime runs. */
  droppedBytecode: { name: string; size: number }[];
  /** Sockets, FIFOs and devices, which a zip cannot hold usefully. */
  skipped: string[];
}

function readMagic(path: string): number | null {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b[2] === 0x0d && b[3] === 0x0a ? b.readUInt16LE(0) : null;
  } finally {
    closeSync(fd);
  }
}

/** True when a .pyc (or .pyo) file is bytecode the runtime's interpreter would not load. */
function wrongBytecode(name: string, path: string, runtime: Runtime): boolean {
  if (!/\.py[co]$/.test(name)) return false;
  if (runtime.family !== 'python') return true;
  if (name.endsWith('.pyo')) return true;
  const base = posix.basename(name);
  if (posix.basename(posix.dirname(name)) === '__pycache__') return !base.includes(`.${runtime.cacheTag}.`);
  // A sourceless module beside its package: kept only if its magic number is the runtime's.
  return readMagic(path) !== runtime.pycMagic;
}

function describeOther(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'a device';
}

export function collect(root: string, prefix: string, runtime: Runtime, skippedTypes: (name: string, what: string) => void = () => undefined): Collected {
  const items: Item[] = [];
  const droppedBytecode: Collected['droppedBytecode'] = [];
  const skipped: string[] = [];
  const walk = (dir: string, rel: string): number => {
    let kept = 0;
    for (const ent of readdirSync(dir).sort()) {
      const path = join(dir, ent);
      const name = rel ? `${rel}/${ent}` : ent;
      const archiveName = prefix + name;
      const st = lstatSync(path);
      if (st.isDirectory()) {
        const inside = walk(path, name);
        if (inside === 0 && ent !== '__pycache__') items.push({ name: archiveName, path, kind: 'dir', size: 0, mode: st.mode & 0o777, mtime: st.mtime });
        kept++;
      } else if (st.isSymbolicLink()) {
        const target = readlinkSync(path);
        const resolved = posix.normalize(posix.join(posix.dirname(name), target));
        if (target.startsWith('/') || resolved === '..' || resolved.startsWith('../')) {
          throw new CliError('UNSAFE_SYMLINK', `${path} is a symlink to ${target}, outside the directory being packed; ` +
            'the init program refuses links that leave the archive: copy the file in its place, or pack the directory it points into', EXIT.ARCHIVE);
        }
        items.push({ name: archiveName, path, kind: 'symlink', size: 0, mode: 0o777, mtime: st.mtime, target });
        kept++;
      } else if (st.isFile()) {
        if (wrongBytecode(name, path, runtime)) {
          droppedBytecode.push({ name: archiveName, size: st.size });
          continue;
        }
        items.push({ name: archiveName, path, kind: 'file', size: st.size, mode: st.mode & 0o777, mtime: st.mtime });
        kept++;
      } else {
        skipped.push(archiveName);
        skippedTypes(archiveName, describeOther(st));
      }
    }
    return kept;
  };
  walk(root, '');
  // Largest files first (the ones that go to memfds, read first), then everything else by path.
  items.sort((a, b) => b.size - a.size || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { items, droppedBytecode, skipped };
}
