/**
 * `pack --profile`: which of the collected items a profile keeps, and in what order.
 *
 * Kept: every file the profile used; every file a --keep glob matches; and, whatever the
 * profile says, what keeps packages valid: each `__init__.py`, everything under a
 * `*.dist-info/` or `*.egg-info/` directory (importlib.metadata and entry points read them),
 * `*.pth` files and Node.js `package.json` files. A symlink is kept when it was used or its
 * target is kept, and a kept symlink keeps its target (transitively), so no kept link dangles.
 * Empty directories stay. Order: used files in first-use order, then the rest in pack's order.
 */
import { posix } from 'node:path';
import { PathFilter } from '../glob';
import type { Item } from './collect';
import { usedInOrder, type Profile } from './profile';

const STRUCTURE = [/(^|\/)__init__\.py$/, /(^|\/)[^/]+\.(dist|egg)-info\//, /(^|\/)[^/]+\.pth$/, /(^|\/)package\.json$/];

export interface Selection {
  items: Item[];
  dropped: { files: number; bytes: number };
}

export function selectByProfile(items: Item[], profile: Profile, keep: string[], orderOnly: boolean): Selection {
  const order = new Map(usedInOrder(profile).map((n, i) => [n, i]));
  const byName = new Map(items.map((i) => [i.name, i]));
  const keepFilter = keep.length ? new PathFilter(keep, []) : null;
  const kept = new Set<string>();
  for (const it of items) {
    if (orderOnly || it.kind === 'dir' || order.has(it.name) || STRUCTURE.some((r) => r.test(it.name)) || keepFilter?.accepts(it.name)) kept.add(it.name);
  }
  // Symlinks: a kept link keeps its target; a link to a kept file is kept.
  for (let changed = true; changed; ) {
    changed = false;
    for (const it of items) {
      if (it.kind !== 'symlink') continue;
      const target = posix.normalize(posix.join(posix.dirname(it.name), it.target!));
      const t = byName.get(target);
      if (kept.has(it.name) && t && !kept.has(target)) {
        kept.add(target);
        changed = true;
      } else if (!kept.has(it.name) && t && kept.has(target)) {
        kept.add(it.name);
        changed = true;
      }
    }
  }
  const chosen = items.filter((i) => kept.has(i.name));
  const rank = (i: Item) => order.get(i.name) ?? Infinity;
  const index = new Map(items.map((i, n) => [i.name, n]));
  chosen.sort((a, b) => rank(a) - rank(b) || index.get(a.name)! - index.get(b.name)!);
  const droppedFiles = items.filter((i) => i.kind === 'file' && !kept.has(i.name));
  return { items: chosen, dropped: { files: droppedFiles.length, bytes: droppedFiles.reduce((s, f) => s + f.size, 0) } };
}
