import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** A directory tree to zip: path -> content, or { symlink: target }. */
export type TreeSpec = Record<string, string | Buffer | { symlink: string } | { mode: number; content: string | Buffer }>;

export function writeTree(root: string, spec: TreeSpec): void {
  for (const [rel, v] of Object.entries(spec)) {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    if (typeof v === 'string' || Buffer.isBuffer(v)) writeFileSync(p, v);
    else if ('symlink' in v) symlinkSync(v.symlink, p);
    else writeFileSync(p, v.content, { mode: v.mode });
  }
}

/** Zips `dir` with Info-ZIP's zip, as users do: symlinks stored as links (-y). */
export function zipDir(dir: string, out: string, opts: { stored?: boolean } = {}): Buffer {
  rmSync(out, { force: true });
  execFileSync('zip', ['-q', '-r', '-y', '-X', ...(opts.stored ? ['-0'] : []), out, '.'], { cwd: dir });
  return readFileSync(out);
}
