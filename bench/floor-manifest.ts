/**
 * The write-only floor's manifest (bench/write-floor.c): every file of an archive, its size,
 * and where the engine would put it, decided by the engine's own code (the CLI's archive
 * opener and central-directory reader, src/plan.ts's placement and src/config.ts's budgets
 * for the environment of the benchmark's engine runs), so that the floor writes the same
 * bytes to the same places.
 */
import { writeFileSync } from 'node:fs';
import { openArchive } from '../src/cli/archive-input';
import { loadConfig } from '../src/config';
import { PathFilter } from '../src/glob';
import { planPlacement } from '../src/plan';

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

/** Writes the manifest of `zipPath` to `out`, placed as the engine would in `env`. */
export async function writeFloorManifest(zipPath: string, out: string, env: Record<string, string>): Promise<FloorManifest> {
  const { directory } = await openArchive(zipPath, 'bench');
  const config = loadConfig(env);
  const plan = planPlacement(directory.entries, new PathFilter(config.include, config.exclude), config);
  const lines = plan.files.filter((f) => !f.symlink).map((f) => {
    const rel = f.rel.toString('utf8');
    if (rel.includes('\n')) throw new FloorManifestError(`${zipPath}: entry ${JSON.stringify(rel)} has a newline in its name, which the manifest cannot carry; rename it`);
    return `${f.placement === 'memfd' ? 'm' : 't'} ${f.entry.uncompressedSize} ${rel}`;
  });
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
