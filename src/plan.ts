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
  /** Every directory to create, parents before children. */
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

function parentsOf(rel: Buffer): string[] {
  const s = rel.toString('latin1');
  const out: string[] = [];
  for (let i = s.indexOf('/'); i >= 0; i = s.indexOf('/', i + 1)) out.push(s.slice(0, i));
  return out;
}

export function planPlacement(entries: ZipEntry[], filter: PathFilter, budgets: Budgets): Plan {
  // Keys are latin1 strings: one char per byte, so any name round-trips.
  const files = new Map<string, PlannedFile>();
  const dirs = new Set<string>();
  let filtered = 0;
  for (const entry of entries) {
    const rel = checkEntryName(entry);
    const key = rel.toString('latin1');
    if (entry.isDirectory) {
      // Directory entries only matter for the files under them; empty ones are kept too.
      if (filter.accepts(key + '/')) dirs.add(key);
      continue;
    }
    if (!filter.accepts(rel.toString('utf8'))) {
      filtered++;
      continue;
    }
    checkEntryFormat(entry);
    if (files.has(key)) {
      throw new ArchiveError('ENTRY_CONFLICT', `entry ${describeName(entry.name)} appears twice in the archive; keep one copy`);
    }
    files.set(key, { entry, rel, symlink: entry.isSymlink, placement: 'tmp' });
    for (const p of parentsOf(rel)) dirs.add(p);
  }
  for (const d of dirs) {
    for (const p of parentsOf(Buffer.from(d, 'latin1'))) dirs.add(p);
    const f = files.get(d);
    if (f) throw new ArchiveError('ENTRY_CONFLICT', `entry ${describeName(f.entry.name)} is both a file and a directory in the archive; rename one`);
  }

  const planned = [...files.values()];
  let memfdCount = 0;
  let memfdBytes = 0;
  let tmpBytes = 0;
  let deniedByCount = 0;
  let deniedByMemory = 0;
  const bySize = planned.filter((f) => !f.symlink).sort((a, b) => b.entry.uncompressedSize - a.entry.uncompressedSize);
  for (const f of bySize) {
    const size = f.entry.uncompressedSize;
    if (size >= budgets.memfdMinSize && size > 0) {
      if (memfdCount >= budgets.maxMemfds) deniedByCount++;
      else if (budgets.memoryBudget !== null && memfdBytes + size > budgets.memoryBudget) deniedByMemory++;
      else {
        f.placement = 'memfd';
        memfdCount++;
        memfdBytes += size;
        continue;
      }
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
  const sortedDirs = [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1));
  return {
    files: planned,
    dirs: sortedDirs.map((d) => Buffer.from(d, 'latin1')),
    memfdCount,
    memfdBytes,
    tmpBytes,
    filtered,
  };
}
