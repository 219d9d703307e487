/**
 * The tree under the target directory. It is built in a fresh staging directory next to the
 * target and renamed into place only when every file is complete, so the runtime never sees a
 * half-written tree. Files are created with O_EXCL|O_NOFOLLOW inside directories we created:
 * nothing is written through a symlink, nothing outside the staging directory.
 */
import { chmodSync, constants, lstatSync, mkdirSync, mkdtempSync, open, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, posix } from 'node:path';
import { promisify } from 'node:util';
import { ArchiveError, ExtractError, SnaploaderError } from './errors';
import { whatToDo } from './extract/entry-checks';
import { makeDirs } from './native';
import type { PlannedFile } from './plan';
import { describeName } from './zip/directory';
import { RESERVED_DIR } from './zip/entry-names';

const openAsync = promisify(open) as (path: Buffer, flags: number, mode: number) => Promise<number>;

/** Symlink hops allowed when checking where a link leads (the kernel's own limit is 40). */
const MAX_LINK_HOPS = 40;

export class Tree {
  private staging: string | null = null;
  /** The staging directory's bytes and a slash, the start of every stagingPath. */
  private stagingPrefix = Buffer.alloc(0);
  /** The archive's symlinks made so far: tree path (latin1) -> target. */
  private readonly links = new Map<string, { file: PlannedFile; target: string }>();

  /** The target directory's bytes and a slash, the start of every finalPath. */
  private readonly finalPrefix: Buffer;
  private readonly finalPrefixLatin1: string;

  constructor(readonly targetDir: string, private readonly helperPid: number) {
    this.finalPrefix = Buffer.from(`${targetDir}/`);
    this.finalPrefixLatin1 = this.finalPrefix.toString('latin1');
  }

  /** Absolute path of `rel` in the finished tree, as the runtime will see it. */
  finalPath(rel: Buffer): Buffer {
    return Buffer.concat([this.finalPrefix, rel]);
  }

  /** finalPath's bytes as a latin1 string (one char per byte), for `rel` given the same way. */
  finalPathLatin1(rel: string): string {
    return this.finalPrefixLatin1 + rel;
  }

  private stagingPath(rel: Buffer): Buffer {
    if (!this.staging) throw new Error('tree not prepared');
    return Buffer.concat([this.stagingPrefix, rel]);
  }

  /** Checks the target is free or ours, and makes the staging directory. */
  prepare(): void {
    this.checkTarget();
    mkdirSync(dirname(this.targetDir), { recursive: true, mode: 0o755 });
    this.staging = mkdtempSync(`${this.targetDir}.partial-`);
    this.stagingPrefix = Buffer.from(`${this.staging}/`);
    chmodSync(this.staging, 0o755); // mkdtemp makes it 0700; the tree is read like /var/task
    mkdirSync(`${this.staging}/${RESERVED_DIR}`, { mode: 0o755 });
  }

  private checkTarget(): void {
    let st;
    try {
      st = lstatSync(this.targetDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const ours = st.isDirectory() && !st.isSymbolicLink() && st.uid === process.getuid!() && isDir(`${this.targetDir}/${RESERVED_DIR}`);
    if (!ours) {
      throw new SnaploaderError('TARGET_DIR_IN_USE', `${this.targetDir} already exists and was not made by snaploader; ` +
        'it is left alone: set SNAPLOADER_TARGET_DIR to a path of its own');
    }
  }

  /**
   * Makes the tree's directories (`dirs` lists parents before children, as the plan does) in
   * one threadpool job of the native extractor, so the main thread stays free for the
   * downloads. Nothing is still being made when it settles, so abort() can follow at once.
   */
  async mkdirs(dirs: Buffer[]): Promise<void> {
    if (dirs.length === 0) return;
    const failed = await makeDirs(dirs.map((d) => this.stagingPath(d)), 0o755);
    if (failed) {
      throw new ExtractError('WRITE_FAILED', `cannot create the directory ${describeName(dirs[failed.index])} in ${this.targetDir}: ${failed.error.message}${whatToDo(failed.error)}`);
    }
  }

  async openFile(file: PlannedFile): Promise<number> {
    const { path, mode } = this.createPath(file);
    try {
      return await openAsync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    } catch (err) {
      throw this.createFailed(file, err as Error);
    }
  }

  /** Where a file of the tree is created (with O_EXCL|O_NOFOLLOW, by openFile or the native extractor), and its mode. */
  createPath(file: PlannedFile): { path: Buffer; mode: number } {
    return { path: this.stagingPath(file.rel), mode: file.entry.unixMode & 0o111 ? 0o755 : 0o644 };
  }

  createFailed(file: PlannedFile, err: Error): ExtractError {
    return new ExtractError('WRITE_FAILED', `cannot create ${describeName(file.rel)} in ${this.targetDir}: ${err.message}${whatToDo(err)}`);
  }

  /** The tree entry of a memfd-backed file: a symlink to the fd the runtime will hold. */
  linkMemfd(file: PlannedFile, fd: number): void {
    try {
      symlinkSync(`/proc/${this.helperPid}/fd/${fd}`, this.stagingPath(file.rel));
    } catch (err) {
      throw new ExtractError('WRITE_FAILED', `cannot create ${describeName(file.rel)} in ${this.targetDir}: ${(err as Error).message}`);
    }
  }

  /** A symlink entry; its target must stay inside the tree. */
  symlink(file: PlannedFile, target: Buffer): void {
    const t = target.toString('latin1');
    const where = file.rel.toString('latin1');
    if (t === '' || t.includes('\0') || t.startsWith('/')) {
      throw new ArchiveError('ENTRY_NAME_UNSAFE', `symlink ${describeName(file.entry.name)} points to ${describeName(target)}, outside the archive; only relative links inside it are allowed`);
    }
    const resolved = posix.normalize(posix.join(posix.dirname(where), t));
    if (resolved === '..' || resolved.startsWith('../')) {
      throw new ArchiveError('ENTRY_NAME_UNSAFE', `symlink ${describeName(file.entry.name)} points to ${describeName(target)}, outside the archive; only relative links inside it are allowed`);
    }
    this.links.set(where, { file, target: t });
    try {
      symlinkSync(target, this.stagingPath(file.rel));
    } catch (err) {
      throw new ExtractError('WRITE_FAILED', `cannot create the symlink ${describeName(file.rel)} in ${this.targetDir}: ${(err as Error).message}`);
    }
  }

  /**
   * Follows every symlink of the archive as the kernel will, through the other links of the
   * archive: none may lead outside the tree. The check in symlink() sees one link at a time,
   * which a chain defeats: `d/up -> ..` stays inside, but `esc -> d/up/..` is the tree's
   * parent. Run once every link exists, before the tree is put in place.
   */
  private checkLinks(): void {
    for (const [where, { file, target }] of this.links) {
      const via = this.leadsOutside(where, target);
      if (via !== null) {
        throw new ArchiveError('ENTRY_NAME_UNSAFE', `symlink ${describeName(file.entry.name)} points to ${describeName(Buffer.from(target, 'latin1'))}, ` +
          `which leads outside the archive through the symlink ${describeName(Buffer.from(via, 'latin1'))}; only links that stay inside it are allowed`);
      }
    }
  }

  /** The link through which `target` (of the link at `where`) leaves the tree, or null if it stays inside. */
  private leadsOutside(where: string, target: string): string | null {
    const dir = where.split('/').slice(0, -1);
    let pending = target.split('/');
    let hops = 0;
    let via = where;
    while (pending.length > 0) {
      const seg = pending.shift()!;
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        if (dir.length === 0) return via;
        dir.pop();
        continue;
      }
      const link = this.links.get([...dir, seg].join('/'));
      if (link) {
        // A loop never resolves, so it cannot lead anywhere: stop following it.
        if (++hops > MAX_LINK_HOPS) return null;
        if (link.target.startsWith('/')) return [...dir, seg].join('/');
        via = [...dir, seg].join('/');
        pending = [...link.target.split('/'), ...pending];
        continue;
      }
      dir.push(seg);
    }
    return null;
  }

  writeMeta(name: string, content: Buffer | string): string {
    writeFileSync(this.stagingPath(Buffer.from(`${RESERVED_DIR}/${name}`)), content, { mode: 0o644, flag: 'wx' });
    return `${this.targetDir}/${RESERVED_DIR}/${name}`;
  }

  /** Puts the finished tree in place of any earlier one of ours. */
  commit(): void {
    if (!this.staging) throw new Error('tree not prepared');
    this.checkLinks();
    this.checkTarget();
    let old: string | null = null;
    if (exists(this.targetDir)) {
      old = mkdtempSync(`${this.targetDir}.old-`);
      renameSync(this.targetDir, `${old}/tree`);
    }
    renameSync(this.staging, this.targetDir);
    this.staging = null;
    if (old) rmSync(old, { recursive: true, force: true });
  }

  /** Removes the staging directory after a failure. */
  abort(): void {
    if (this.staging) rmSync(this.staging, { recursive: true, force: true });
    this.staging = null;
  }
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function isDir(p: string): boolean {
  try {
    const st = lstatSync(p);
    return st.isDirectory();
  } catch {
    return false;
  }
}
