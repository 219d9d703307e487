/**
 * Decides whether an entry name is safe to create under the tree, stricter than the usual
 * extractors: no absolute paths, drive letters, backslashes, `.`/`..`/empty segments,
 * control bytes, or over-long names. Names are bytes; nothing is decoded.
 */
import { ArchiveError } from '../errors';
import { describeName, type ZipEntry } from './directory';

export const RESERVED_DIR = '.snaploader';
const MAX_NAME_BYTES = 4000;
const MAX_SEGMENT_BYTES = 255;

function unsafe(name: Buffer, why: string): ArchiveError {
  return new ArchiveError('ENTRY_NAME_UNSAFE', `entry ${describeName(name)} ${why}; rebuild the archive with relative paths (zip -r from inside the directory)`);
}

/** Whether the segment at [start, start + length) of the name is "." or "..". */
function isDots(name: Buffer, start: number, length: number): boolean {
  return name[start] === 0x2e && (length === 1 || (length === 2 && name[start + 1] === 0x2e));
}

/** Returns the entry's relative path without a trailing slash, or throws. */
export function checkEntryName(entry: ZipEntry): Buffer {
  const name = entry.name;
  if (name.length === 0) throw unsafe(name, 'has an empty name');
  if (name.length > MAX_NAME_BYTES) throw unsafe(name, `has a ${name.length}-byte name (limit ${MAX_NAME_BYTES})`);
  for (let i = 0; i < name.length; i++) {
    const b = name[i];
    if (b < 0x20 || b === 0x7f) throw unsafe(name, 'contains a control byte');
    if (b === 0x5c) throw unsafe(name, 'contains a backslash');
  }
  if (name[0] === 0x2f) throw unsafe(name, 'is an absolute path');
  if (name.length >= 2 && name[1] === 0x3a && /[A-Za-z]/.test(String.fromCharCode(name[0]))) throw unsafe(name, 'starts with a drive letter');
  const relLength = name[name.length - 1] === 0x2f ? name.length - 1 : name.length;
  if (relLength === 0) throw unsafe(name, 'has an empty name');
  // Segment by segment, by index: this runs for every entry of archives of thousands.
  let start = 0;
  for (let i = 0; i <= relLength; i++) {
    if (i < relLength && name[i] !== 0x2f) continue;
    const length = i - start;
    if (length === 0) throw unsafe(name, 'has an empty path segment');
    if (length > MAX_SEGMENT_BYTES) throw unsafe(name, `has a path segment over ${MAX_SEGMENT_BYTES} bytes`);
    if (isDots(name, start, length)) throw unsafe(name, `has a "${name.toString('latin1', start, i)}" segment`);
    if (start === 0 && length === RESERVED_DIR.length && name.toString('latin1', 0, length) === RESERVED_DIR) {
      throw new ArchiveError('ENTRY_NAME_UNSAFE', `entry ${describeName(name)} is under ${RESERVED_DIR}/, which snaploader reserves for its own files; rename that directory in the archive`);
    }
    start = i + 1;
  }
  return relLength === name.length ? name : name.subarray(0, relLength);
}

const S_IFMT = 0o170000;
/** File types other than regular files, directories and symlinks: never created, refused. */
const SPECIAL_TYPES: Record<number, string> = {
  0o010000: 'a FIFO (named pipe)',
  0o020000: 'a character device',
  0o060000: 'a block device',
  0o140000: 'a socket',
};

/**
 * Rejects what we cannot or will not extract, naming the entry. Special files (devices,
 * FIFOs, sockets) are refused rather than turned into empty regular files; setuid, setgid and
 * sticky bits are not refused but never honoured: files are created 0644, or 0755 when any
 * execute bit is set (tree.ts).
 */
export function checkEntryFormat(entry: ZipEntry): void {
  if (entry.flags & 0x1) {
    throw new ArchiveError('ZIP_UNSUPPORTED', `entry ${describeName(entry.name)} is encrypted; snaploader reads only unencrypted archives (rely on S3 encryption at rest instead)`);
  }
  if (entry.method !== 0 && entry.method !== 8) {
    throw new ArchiveError('ZIP_UNSUPPORTED', `entry ${describeName(entry.name)} uses compression method ${entry.method}; only stored (0) and deflate (8) are supported: re-create it with zip -r`);
  }
  const type = entry.unixMode & S_IFMT;
  if (type !== 0 && type !== 0o100000 && type !== 0o040000 && type !== 0o120000) {
    throw new ArchiveError('ZIP_UNSUPPORTED', `entry ${describeName(entry.name)} is ${SPECIAL_TYPES[type] ?? `a special file (type 0o${type.toString(8)})`}; ` +
      'snaploader extracts only regular files, directories and symlinks: leave it out of the archive (or SNAPLOADER_EXCLUDE it)');
  }
  if (entry.method === 0 && entry.compressedSize !== entry.uncompressedSize) {
    throw new ArchiveError('ZIP_MALFORMED', `stored entry ${describeName(entry.name)} declares ${entry.compressedSize} bytes compressed but ${entry.uncompressedSize} uncompressed`);
  }
}
