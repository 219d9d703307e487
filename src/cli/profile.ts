/**
 * The profile `snaploader trace` writes and `snaploader pack --profile` reads: which archive
 * paths a function used, in the order of first use, for one archive (its SHA-256).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { CliError, EXIT } from './errors';

export const PROFILE_VERSION = 1;

export interface ProfileFile {
  /** 0 for the first file used, 1 for the next, ... */
  order: number;
  /** How many records of a use: one per process that first used it, plus one if mapped at the end. */
  count: number;
}

export interface Profile {
  version: number;
  archive: { path: string; sha256: string; bytes: number; files: number };
  handler: string;
  events: string[];
  used: { files: number; bytes: number };
  /** Archive path -> its use. */
  files: Record<string, ProfileFile>;
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (d) => h.update(d)).on('error', reject).on('end', () => resolve(h.digest('hex')));
  });
}

/** Decodes a trace line: the preload library percent-encodes bytes <= 0x20, '%' and >= 0x7f. */
export function decodeTraceLine(line: string): string {
  return Buffer.from(line.replace(/%([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}

/** Counts uses in first-use order: `uses` is every archive path recorded, repeats included. */
export function tally(uses: string[]): Record<string, ProfileFile> {
  const files: Record<string, ProfileFile> = {};
  let next = 0;
  for (const u of uses) {
    const f = files[u];
    if (f) f.count++;
    else files[u] = { order: next++, count: 1 };
  }
  return files;
}

/** Used paths, in first-use order. */
export function usedInOrder(p: Profile): string[] {
  return Object.entries(p.files).sort((a, b) => a[1].order - b[1].order).map(([name]) => name);
}

export function readProfile(path: string): Profile {
  if (!existsSync(path)) throw new CliError('INPUT_NOT_FOUND', `profile ${path} does not exist: snaploader trace writes one`, EXIT.INPUT);
  let p: Profile;
  try {
    p = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  } catch (err) {
    throw new CliError('PROFILE_INVALID', `profile ${path} is not JSON (${(err as Error).message}): write it again with snaploader trace`, EXIT.INPUT);
  }
  const ok = p && p.version === PROFILE_VERSION && typeof p.archive?.sha256 === 'string' && /^[0-9a-f]{64}$/.test(p.archive.sha256) &&
    typeof p.files === 'object' && p.files !== null &&
    Object.values(p.files).every((f) => Number.isInteger(f?.order) && Number.isInteger(f?.count));
  if (!ok) throw new CliError('PROFILE_INVALID', `profile ${path} is not a version ${PROFILE_VERSION} snaploader profile: write it again with snaploader trace`, EXIT.INPUT);
  return p;
}
