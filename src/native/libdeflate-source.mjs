// libdeflate's source for the native extractor: fetched from crates.io (the libdeflate-sys
// crate carries libdeflate's C sources unchanged), verified against a pinned SHA-256, cached
// outside the clone, and laid out with our patch (src/native/libdeflate.patch) applied.
//
// crates.io keeps every published file for good and never lets it change; its index records
// this crate's SHA-256 (`cksum`), the value pinned here. The tree under `libdeflate/` in it is
// byte for byte the `libdeflate_1.14.orig.tar.gz` of Debian's libdeflate 1.14-1.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const LIBDEFLATE = Object.freeze({
  version: '1.14',
  crate: 'libdeflate-sys',
  crateVersion: '0.11.0',
  sha256: 'cb6784b6b84b67d71b4307963d456a9c7c29f9b47c658f533e598de369e34277',
});

export const LIBDEFLATE_PATCH = join(dirname(fileURLToPath(import.meta.url)), 'libdeflate.patch');

const ARCHIVE_NAME = `${LIBDEFLATE.crate}-${LIBDEFLATE.crateVersion}.crate`;
const ARCHIVE_URL = `https://static.crates.io/crates/${LIBDEFLATE.crate}/${ARCHIVE_NAME}`;
const DOWNLOAD_ATTEMPTS = 3;
const DOWNLOAD_TIMEOUT_MS = 60_000;

export class LibdeflateSourceError extends Error {
  /**
   * @param {'LIBDEFLATE_DOWNLOAD_FAILED' | 'LIBDEFLATE_CHECKSUM_MISMATCH' | 'LIBDEFLATE_EXTRACT_FAILED' | 'LIBDEFLATE_PATCH_FAILED'} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'LibdeflateSourceError';
    this.code = code;
  }
}

/** `${SNAPLOADER_CACHE:-$HOME/.cache/snaploader}`: where fetched build inputs are kept. */
export function cacheRoot(env = process.env) {
  return env.SNAPLOADER_CACHE || join(homedir(), '.cache', 'snaploader');
}

/** Where the pinned archive is kept: `<cache>/libdeflate-<version>/<crate file>`. */
export function archivePath(cache = cacheRoot()) {
  return join(cache, `libdeflate-${LIBDEFLATE.version}`, ARCHIVE_NAME);
}

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

function checkDigest(bytes, what) {
  const actual = sha256(bytes);
  if (actual !== LIBDEFLATE.sha256) {
    throw new LibdeflateSourceError('LIBDEFLATE_CHECKSUM_MISMATCH',
      `${what} has SHA-256 ${actual}, not the pinned ${LIBDEFLATE.sha256} of ${LIBDEFLATE.crate} ` +
      `${LIBDEFLATE.crateVersion} (libdeflate ${LIBDEFLATE.version}): it is damaged or not that release. ` +
      'Nothing was built from it. Delete it and build again to download it anew; if the download ' +
      'mismatches too, check what answers for static.crates.io on this network');
  }
}

async function download() {
  let last;
  for (let attempt = 1; attempt <= DOWNLOAD_ATTEMPTS; attempt++) {
    try {
      const res = await fetch(ARCHIVE_URL, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
      return Buffer.from(await res.arrayBuffer());
    } catch (err) {
      last = err;
    }
  }
  throw new LibdeflateSourceError('LIBDEFLATE_DOWNLOAD_FAILED',
    `cannot download ${ARCHIVE_URL} (${DOWNLOAD_ATTEMPTS} attempts; last: ${last?.cause?.message ?? last?.message ?? last}): ` +
    'the build needs crates.io once per machine; or put that file, as published, at ' + archivePath());
}

/**
 * The path of the pinned archive in the cache, downloaded on first use. The cached copy is
 * checked at every call: a mismatch throws LIBDEFLATE_CHECKSUM_MISMATCH and never falls back
 * to a download, so a damaged cache is seen rather than papered over.
 */
export async function fetchLibdeflateArchive({ cache = cacheRoot() } = {}) {
  const path = archivePath(cache);
  if (existsSync(path)) {
    checkDigest(readFileSync(path), path);
    return path;
  }
  const bytes = await download();
  checkDigest(bytes, `${ARCHIVE_URL} as downloaded`);
  mkdirSync(dirname(path), { recursive: true });
  const partial = `${path}.${process.pid}.partial`;
  writeFileSync(partial, bytes);
  renameSync(partial, path);
  return path;
}

function runTool(cmd, args, failure) {
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const why = err.code === 'ENOENT'
      ? `${cmd} is not installed: install Debian's ${cmd} package (the Makefile's DEBIAN_PACKAGES lists it)`
      : `${cmd} exited with ${err.status ?? err.signal}:\n${err.stdout ?? ''}${err.stderr ?? ''}`;
    throw failure(why.trimEnd());
  }
}

/**
 * Lays out libdeflate's source in `dir` (emptied first): the verified archive's `libdeflate/`
 * tree with our patch applied, no fuzz allowed. Returns `dir`; its COPYING is libdeflate's
 * licence, which ships with the layer.
 */
export async function prepareLibdeflate(dir, { cache = cacheRoot(), patch = LIBDEFLATE_PATCH } = {}) {
  const archive = await fetchLibdeflateArchive({ cache });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    runTool('tar', ['-xzf', archive, '-C', dir, '--strip-components=2', `${LIBDEFLATE.crate}-${LIBDEFLATE.crateVersion}/libdeflate`],
      (why) => new LibdeflateSourceError('LIBDEFLATE_EXTRACT_FAILED', `cannot extract libdeflate from ${archive}: ${why}`));
    runTool('patch', ['-p1', '--batch', '--forward', '--fuzz=0', '--no-backup-if-mismatch', '-d', dir, '-i', patch],
      (why) => new LibdeflateSourceError('LIBDEFLATE_PATCH_FAILED',
        `${patch} does not apply to libdeflate ${LIBDEFLATE.version} (${archive}): ${why}\n` +
        'Regenerate the patch against that release (diff -u of the pristine and the changed tree).'));
  } catch (err) {
    rmSync(dir, { recursive: true, force: true }); // never leave a half-patched tree to build from
    throw err;
  }
  return dir;
}
