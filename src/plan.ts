/**
 * Placement: which files go to memfds and which to the tree under /tmp, decided before a
 * byte of file data is downloaded. The largest files go to memory first, while the fd and
 * memory budgets allow; the rest go to /tmp, which must fit its budget. If the archive does
 * not fit, the error names the budget, the numbers and the variables that change them.
 */
import { ArchiveError, BudgetError } from './errors';
import { PathFilter } from './glob';
import { formatBytes } from './log';
import { describeName, type ZipEntry } from './zip/directory';
import { checkEntryFormat, checkEntryName } from './zip/entry-names';

export type Placement = 'memfd' | 'tmp';

export interface PlannedFile {
  entry: ZipEntry;
  /** Path relative to the tree root, no trailing slash. */
  rel: Buffer;
  symlink: boolean;
  placement: Placement;
}

export interface Plan {
  files: PlannedFile[];
  /** Every directory to create, shallowest first: all of one depth before any deeper one, so parents before children. */
  dirs: Buffer[];
  memfdCount: number;
  memfdBytes: number;
  tmpBytes: number;
  /** Entries left out by SNAPLOADER_INCLUDE / SNAPLOADER_EXCLUDE. */
  filtered: number;
}

export interface Budgets {
  memfdMinSize: number;
  maxMemfds: number;
  tmpBudget: number;
  memoryBudget: number | null;
}

const BLOCK = 4096;
const diskBytes = (n: number): number => Math.ceil(n / BLOCK) * BLOCK;

/** Adds `dir` and every directory above it that is not in `dirs` yet (whatever is in it has its parents too). */
function addWithParents(dirs: Set<string>, dir: string): void {
  for (let d = dir; !dirs.has(d);) {
    dirs.add(d);
    const slash = d.lastIndexOf('/');
    if (slash < 0) return;
    d = d.slice(0, slash);
  }
}

function depthOf(dir: string): number {
  let n = 0;
  for (let i = dir.indexOf('/'); i >= 0; i = dir.indexOf('/', i + 1)) n++;
  return n;
}

/** Relative directory paths, shallowest first (all of one depth before any deeper one), then by name. */
export function shallowestFirst(dirs: Iterable<string>): string[] {
  return [...dirs].map((d) => ({ d, depth: depthOf(d) }))
    .sort((a, b) => a.depth - b.depth || (a.d < b.d ? -1 : 1))
    .map(({ d }) => d);
}

/*
 * This runs for every entry before the first byte of file data is asked for, on archives of
 * thousands of entries: no per-entry work that is not needed (no decoding when nothing is
 * filtered, each directory walked up only until one already known).
 */
export function planPlacement(entries: ZipEntry[], filter: PathFilter, budgets: Budgets): Plan {
  // Keys are latin1 strings: one char per byte, so any name round-trips.
  const files = new Map<string, PlannedFile>();
  const dirs = new Set<string>();
  const filtering = !filter.acceptsAll;
  let filtered = 0;
  for (const entry of entries) {
    const rel = checkEntryName(entry);
    const key = rel.toString('latin1');
    if (entry.isDirectory) {
      // Directory entries only matter for the files under them; empty ones are kept too.
      if (!filtering || filter.accepts(key + '/')) addWithParents(dirs, key);
      continue;
    }
    if (filtering && !filter.accepts(rel.toString('utf8'))) {
      filtered++;
      continue;
    }
    checkEntryFormat(entry);
    if (files.has(key)) {
      throw new ArchiveError('ENTRY_CONFLICT', `entry ${describeName(entry.name)} appears twice in the archive; keep one copy`);
    }
    files.set(key, { entry, rel, symlink: entry.isSymlink, placement: 'tmp' });
    const slash = key.lastIndexOf('/');
    if (slash > 0) addWithParents(dirs, key.slice(0, slash));
  }
  for (const d of dirs) {
    const f = files.get(d);
    if (f) throw new ArchiveError('ENTRY_CONFLICT', `entry ${describeName(f.entry.name)} is both a file and a directory in the archive; rename one`);
  }

  const planned = [...files.values()];
  let memfdCount = 0;
  let memfdBytes = 0;
  let tmpBytes = 0;
  let deniedByCount = 0;
  let deniedByMemory = 0;
  // Only files that may go to memory need an order: the largest first.
  const candidates: PlannedFile[] = [];
  for (const f of planned) {
    if (f.symlink) continue;
    const size = f.entry.uncompressedSize;
    if (size >= budgets.memfdMinSize && size > 0) candidates.push(f);
    else tmpBytes += diskBytes(size);
  }
  candidates.sort((a, b) => b.entry.uncompressedSize - a.entry.uncompressedSize);
  for (const f of candidates) {
    const size = f.entry.uncompressedSize;
    if (memfdCount >= budgets.maxMemfds) deniedByCount++;
    else if (budgets.memoryBudget !== null && memfdBytes + size > budgets.memoryBudget) deniedByMemory++;
    else {
      f.placement = 'memfd';
      memfdCount++;
      memfdBytes += size;
      continue;
    }
    tmpBytes += diskBytes(size);
  }
  if (tmpBytes > budgets.tmpBudget) {
    const why: string[] = [];
    if (deniedByCount > 0) why.push(`${deniedByCount} large files did not get a memfd because SNAPLOADER_MAX_MEMFDS=${budgets.maxMemfds} was reached`);
    if (deniedByMemory > 0) why.push(`${deniedByMemory} large files did not fit SNAPLOADER_MEMORY_BUDGET=${formatBytes(budgets.memoryBudget ?? 0)} (raise the function's memory, or set the budget)`);
    throw new BudgetError(`the archive needs ${formatBytes(tmpBytes)} in /tmp but SNAPLOADER_TMP_BUDGET is ${formatBytes(budgets.tmpBudget)} ` +
      `(${formatBytes(memfdBytes)} in ${memfdCount} files already goes to memory)${why.length ? `; ${why.join('; ')}` : ''}. ` +
      'Raise SNAPLOADER_TMP_BUDGET (with the function\'s ephemeral storage), lower SNAPLOADER_MEMFD_MIN_SIZE, or leave files out with SNAPLOADER_EXCLUDE');
  }
  return {
    files: planned,
    dirs: shallowestFirst(dirs).map((d) => Buffer.from(d, 'latin1')),
    memfdCount,
    memfdBytes,
    tmpBytes,
    filtered,
  };
}
