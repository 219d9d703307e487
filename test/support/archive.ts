import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROOT } from './paths';

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

/** Zips `dir` with Info-ZIP's zip, as users do: symlinks stored as links (-y); -fz forces zip64 records. */
export function zipDir(dir: string, out: string, opts: { stored?: boolean; zip64?: boolean } = {}): Buffer {
  rmSync(out, { force: true });
  execFileSync('zip', ['-q', '-r', '-y', '-X', ...(opts.stored ? ['-0'] : []), ...(opts.zip64 ? ['-fz'] : []), out, '.'], { cwd: dir });
  return readFileSync(out);
}

export interface PyEntry {
  name: string;
  text?: string;
  base64?: string;
  method?: 'stored' | 'deflated' | 'bzip2';
  mode?: number;
}

/** Builds a zip in memory with CPython's zipfile (zip64 on demand, any method it knows). */
export function pyZip(entries: PyEntry[], opts: { forceZip64?: boolean; comment?: string } = {}): Buffer {
  return execFileSync('python3', [join(ROOT, 'test', 'fixtures', 'zips', 'make_zip.py')], {
    input: JSON.stringify({ entries, force_zip64: opts.forceZip64 ?? false, comment: opts.comment ?? '' }),
    maxBuffer: 1 << 30,
  });
}

/** An ArchiveSource over bytes in memory: the engine's input without a network. */
export function bufferSource(buf: Buffer, url = 's3://test/archive.zip') {
  return {
    url,
    size: buf.length,
    read: async (start: number, end: number) => Buffer.from(buf.subarray(start, end)),
    stream: async (start: number, end: number) => (async function* () {
      for (let at = start; at < end; at += 7919) yield Buffer.from(buf.subarray(at, Math.min(end, at + 7919)));
    })(),
  };
}
