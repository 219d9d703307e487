/**
 * The init program's entry (the layer's snaploader/init.js). It runs the bundled program
 * (init-main.js), compiled with the V8 code cache the build made for the Node layer's node:
 * on a cold start V8 then reads bytecode instead of parsing and compiling ~600 KB of
 * JavaScript, most of it the SDK (about 60 ms less per cold start, docs/architecture.md).
 *
 * - The cache is named after the bundle it was made from and after the node that made it
 *   (`code-cache/<bundle id>-<node version>-<arch>.bin`): any other node finds no file and
 *   compiles as usual. V8 checks the rest (its version, its flags) and rejects a cache that
 *   does not fit; the program then compiles as usual too. V8 does not check the cache's bytes:
 *   a checksum in the file does, and a damaged cache is never given to V8. Either way
 *   nothing else changes.
 * - V8 flags are part of that check. The program changes one (heap.ts), after it has been
 *   compiled; the build puts it back to its default before writing the cache.
 * - What happened is left for the program to report in its debug log (code-cache.ts).
 *
 * Before that, when the archive comes over HTTPS, it loads node:tls: loading it starts a thread
 * that parses Node's bundled root certificates (about 20 ms of CPU here), which then works while
 * this thread compiles and starts the program. Over plain HTTP nothing loads node:tls.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { CODE_CACHE_STATUS, type CodeCacheStatus } from './code-cache';
import { describe, SnaploaderError } from './errors';
import { error } from './log';
import { s3UsesTls } from './s3/endpoint';

/** sha256 of init-main.js, first 16 hex digits (build.mjs). */
declare const SNAPLOADER_BUNDLE_ID: string;

const BUNDLE_FILE = 'init-main.js';
/** A cache file is the SHA-256 of the cache, then the cache (src/code-cache-maker.mjs). */
const DIGEST_BYTES = 32;

function codeCachePath(dir: string, bundleId: string, version: string, arch: string): string {
  return join(dir, 'code-cache', `${bundleId}-${version}-${arch}.bin`);
}

/**
 * The cache's bytes, if there is a cache for this node and it is whole. V8 checks a cache's
 * versions and flags but not its bytes (a damaged one crashes it), so the file starts with
 * the SHA-256 of the rest, checked here.
 */
function readCache(path: string): { data?: Buffer; state: CodeCacheStatus['state'] } {
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch {
    return { state: 'none' }; // no cache for this node: compile as usual
  }
  const data = file.subarray(DIGEST_BYTES);
  const whole = file.length > DIGEST_BYTES && createHash('sha256').update(data).digest().equals(file.subarray(0, DIGEST_BYTES));
  return whole ? { data, state: 'used' } : { state: 'damaged' };
}

function readBundle(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new SnaploaderError('LAYER_INCOMPLETE', `${file} cannot be read (${(err as Error).message}): ` +
      'the snaploader layer is incomplete; attach the layer zip as built (dist/snaploader-<arch>.zip)');
  }
}

function main(): void {
  if (s3UsesTls(process.env)) require('node:tls');
  const file = join(__dirname, BUNDLE_FILE);
  const cachePath = codeCachePath(__dirname, SNAPLOADER_BUNDLE_ID, process.version, process.arch);
  const cache = readCache(cachePath);
  // The same wrapper Node's CommonJS loader puts around a module.
  const source = `(function (exports, require, module, __filename, __dirname) {${readBundle(file)}\n})`;
  const script = new Script(source, { filename: file, cachedData: cache.data });
  const status: CodeCacheStatus = { state: script.cachedDataRejected ? 'rejected' : cache.state, path: cachePath };
  (globalThis as Record<symbol, unknown>)[CODE_CACHE_STATUS] = status;
  const module = { exports: {} };
  (script.runInThisContext() as (...args: unknown[]) => void)(module.exports, require, module, file, __dirname);
}

try {
  main();
} catch (err) {
  error(describe(err));
  process.exitCode = 1;
}
