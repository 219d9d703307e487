/**
 * The native extractor (src/native/snaploader_native.c, built per architecture by build.mjs
 * into the layer's lib/): inflate with libdeflate, CRC-32 and pwrite, as one threadpool job
 * per entry or per piece of a streamed entry. There is no JavaScript stand-in: without it
 * the layer is incomplete, and that is said plainly.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import { SnaploaderError } from './errors';

export const NATIVE_FILE = 'snaploader-native.node';

type Raw = [status: number, errno: number, crc: number, written: number];

interface Addon {
  writeEntry(fd: number, parts: Buffer[], method: number, size: number): Promise<Raw>;
  writeFiles(specs: [path: Buffer, mode: number, method: number, size: number, parts: Buffer[]][]): Promise<Raw[]>;
  makeDirs(paths: Buffer[], mode: number): Promise<[failed: number, errno: number]>;
  crc32(buf: Buffer, crc: number): number;
  streamOpen(fd: number, method: number, size: number, compressedSize: number, onEvent: (kind: number, raw: Raw) => void): object | Raw;
  streamFeed(handle: object, buf: Buffer): boolean;
  streamAbort(handle: object): void;
}

export type WriteStatus = 'ok' | 'corrupt' | 'too-large' | 'write' | 'close' | 'no-memory' | 'block-too-large' | 'aborted' | 'map' | 'open';
const STATUS: WriteStatus[] = ['ok', 'corrupt', 'too-large', 'write', 'close', 'no-memory', 'block-too-large', 'aborted', 'map', 'open'];
/** Statuses whose errno says why. */
const WITH_ERRNO = new Set<WriteStatus>(['write', 'close', 'map', 'open']);

export interface WriteResult {
  status: WriteStatus;
  /** For 'write', 'close', 'map' and 'open': what the system call said, e.g. "ENOSPC: no space left on device". */
  error: NodeJS.ErrnoException | null;
  crc: number;
  written: number;
}

/** Where the addon is: next to the bundled init.js (the layer), or in the build tree (tests). */
export function nativeCandidates(dir: string = __dirname): string[] {
  const arch = process.arch === 'arm64' ? 'arm64' : 'x86_64';
  return [join(dir, 'lib', NATIVE_FILE), join(dir, '..', 'build', arch, 'opt', 'snaploader', 'lib', NATIVE_FILE)];
}

let addon: Addon | null = null;

function load(): Addon {
  if (addon) return addon;
  const candidates = nativeCandidates();
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new SnaploaderError('LAYER_INCOMPLETE', `the native extractor ${candidates[0]} is missing: ` +
      'the snaploader layer is incomplete; attach the layer zip as built (dist/snaploader-<arch>.zip), or run `make build` from source');
  }
  const mod = { exports: {} as Addon };
  try {
    process.dlopen(mod, path);
  } catch (err) {
    throw new SnaploaderError('LAYER_INCOMPLETE', `the native extractor ${path} cannot be loaded (${(err as Error).message}): ` +
      `is the layer built for this function's architecture (${process.arch})?`);
  }
  addon = mod.exports;
  return addon;
}

function errnoError(errno: number): NodeJS.ErrnoException {
  const [name, text] = getSystemErrorMap().get(-errno) ?? [`errno ${errno}`, 'unknown error'];
  const err: NodeJS.ErrnoException = new Error(`${name}: ${text}`);
  err.code = name;
  err.errno = -errno;
  return err;
}

function result([status, errno, crc, written]: Raw): WriteResult {
  const s = STATUS[status] ?? 'write';
  return { status: s, error: WITH_ERRNO.has(s) ? errnoError(errno) : null, crc: crc >>> 0, written };
}

/**
 * A whole entry from its compressed bytes (`parts`, in order): inflated (method 8, through the
 * thread's window) or copied (method 0), written at offset 0 of `fd`; `fd` is closed
 * whatever happens. 'too-large' if it would pass `size`; `written` may be less.
 */
export async function writeEntry(fd: number, parts: Buffer[], method: 0 | 8, size: number): Promise<WriteResult> {
  return result(await load().writeEntry(fd, parts, method, size));
}

/** A small file to create and fill with a whole entry (see writeFiles). */
export interface FileSpec {
  /** Absolute path; created with O_EXCL|O_NOFOLLOW. */
  path: Buffer;
  mode: number;
  method: 0 | 8;
  size: number;
  parts: Buffer[];
}

/**
 * Several small files in one threadpool job: each is created, written as writeEntry does
 * and closed; one result per file, in order ('open' if it could not be created).
 */
export async function writeFiles(files: FileSpec[]): Promise<WriteResult[]> {
  const specs = files.map((f): [Buffer, number, number, number, Buffer[]] => [f.path, f.mode, f.method, f.size, f.parts]);
  return (await load().writeFiles(specs)).map(result);
}

/**
 * Makes each directory, in the order given (parents first), in one threadpool job; stops at
 * the first that cannot be made. Null when all were made, else which one failed and why.
 */
export async function makeDirs(paths: Buffer[], mode: number): Promise<{ index: number; error: NodeJS.ErrnoException } | null> {
  const [failed, errno] = await load().makeDirs(paths, mode);
  return failed < 0 ? null : { index: failed, error: errnoError(errno) };
}

/** Fails now, with the reason, if the addon cannot be used (called once at start). */
export function checkNative(): void {
  load();
}

/** CRC-32 of a small buffer, on the calling thread. */
export function crc32(buf: Buffer, crc: number): number {
  return load().crc32(buf, crc) >>> 0;
}

/** Compressed bytes a deflate block may span and still be streamed (LOOKAHEAD in the addon). */
export const STREAM_BLOCK_LIMIT = 1024 * 1024;

/**
 * An entry written on a thread of its own into the first `size` bytes of `fd` as its compressed
 * bytes are fed in: inflated (method 8, written with pwrite from a window of the thread's) or
 * stored (method 0, checksummed and written as it arrives). Feed exactly the compressed size,
 * then await done(); after a failure of your own, abort() and still await done() before
 * closing fd.
 */
export class EntryStream {
  private readonly handle: object | null;
  private drained: (() => void) | null = null;
  private readonly finished: Promise<WriteResult>;
  private settle!: (r: WriteResult) => void;
  /** Set once the stream has ended without success: feeding it more is pointless. */
  failed = false;

  constructor(fd: number, method: 0 | 8, size: number, compressedSize: number) {
    this.finished = new Promise((resolve) => (this.settle = (r) => {
      this.failed = r.status !== 'ok';
      resolve(r);
    }));
    const h = load().streamOpen(fd, method, size, compressedSize, (kind, raw) => {
      this.wake();
      if (kind === 1) this.settle(result(raw));
    });
    if (Array.isArray(h)) {
      this.handle = null;
      this.settle(result(h as Raw));
    } else {
      this.handle = h;
    }
  }

  private wake(): void {
    const d = this.drained;
    this.drained = null;
    d?.();
  }

  /** Copies `buf` in; resolves when there is room for more (or the stream has ended). */
  async feed(buf: Buffer): Promise<void> {
    if (!this.handle || load().streamFeed(this.handle, buf)) return;
    await Promise.race([new Promise<void>((resolve) => (this.drained = resolve)), this.finished]);
  }

  abort(): void {
    if (this.handle) load().streamAbort(this.handle);
  }

  done(): Promise<WriteResult> {
    return this.finished;
  }
}
