/**
 * The write-only floor's manifest (bench/write-floor.c): every file of an archive, its size,
 * and where the engine would put it, decided by the engine's own code (its central-directory
 * reader, src/plan.ts's placement and src/config.ts's budgets for the environment of the
 * benchmark's engine runs), so that the floor writes the same bytes to the same places.
 */
import { closeSync, fstatSync, openSync, readSync, writeFileSync } from 'node:fs';
import { loadConfig } from '../src/config';
import { PathFilter } from '../src/glob';
import { planPlacement } from '../src/plan';
import { readCentralDirectory, TAIL_BYTES } from '../src/zip/directory';

export class FloorManifestError extends Error {
  readonly code = 'BENCH_FLOOR_MANIFEST';
}

export interface FloorManifest {
  path: string;
  files: number;
  memfds: number;
  memfdBytes: number;
  tmpBytes: number;
  /** Symbolic links: the engine makes them without writing data; the floor leaves them out. */
  symlinks: number;
}

function readAt(fd: number, start: number, end: number): Buffer {
  const buf = Buffer.alloc(end - start);
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, start + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** Writes the manifest of `zipPath` to `out`, placed as the engine would in `env`. */
export async function writeFloorManifest(zipPath: string, out: string, env: Record<string, string>): Promise<FloorManifest> {
  const fd = openSync(zipPath, 'r');
  let lines: string[];
  let plan;
  try {
    const size = fstatSync(fd).size;
    const tail = readAt(fd, Math.max(0, size - TAIL_BYTES), size);
    const dir = await readCentralDirectory(size, tail, async (s, e) => readAt(fd, s, e));
    const config = loadConfig(env);
    plan = planPlacement(dir.entries, new PathFilter(config.include, config.exclude), config);
    lines = plan.files.filter((f) => !f.symlink).map((f) => {
      const rel = f.rel.toString('utf8');
      if (rel.includes('\n')) throw new FloorManifestError(`${zipPath}: entry ${JSON.stringify(rel)} has a newline in its name, which the manifest cannot carry; rename it`);
      return `${f.placement === 'memfd' ? 'm' : 't'} ${f.entry.uncompressedSize} ${rel}`;
    });
  } finally {
    closeSync(fd);
  }
  writeFileSync(out, lines.length ? `${lines.join('\n')}\n` : '');
  return {
    path: out,
    files: lines.length,
    memfds: plan.memfdCount,
    memfdBytes: plan.memfdBytes,
    tmpBytes: plan.tmpBytes,
    symlinks: plan.files.length - lines.length,
  };
}
