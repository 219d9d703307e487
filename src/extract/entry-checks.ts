/**
 * What an entry's bytes must satisfy once written (its declared size and CRC-32), and the
 * typed errors for entries that do not, or that could not be written.
 */
import { ArchiveError, ExtractError } from '../errors';
import { STREAM_BLOCK_LIMIT, type WriteResult } from '../native';
import { describeName, type ZipEntry } from '../zip/directory';

export function tooLarge(entry: ZipEntry): ArchiveError {
  return new ArchiveError('ENTRY_SIZE_MISMATCH', `entry ${describeName(entry.name)} inflates to more than its declared ${entry.uncompressedSize} bytes`);
}

/** What to do about a failed write, when the error says: nothing, or that /tmp is full. */
export function whatToDo(err: NodeJS.ErrnoException): string {
  return err.code === 'ENOSPC' ? ' (/tmp is full: raise the function\'s ephemeral storage or lower SNAPLOADER_TMP_BUDGET)' : '';
}

function writeFailed(entry: ZipEntry, err: unknown): ExtractError {
  const e = err as NodeJS.ErrnoException;
  return new ExtractError('WRITE_FAILED', `writing ${describeName(entry.name)} failed: ${e.message}${whatToDo(e)}`);
}

export function corrupt(entry: ZipEntry, err: unknown): ArchiveError {
  return new ArchiveError('ZIP_MALFORMED', `entry ${describeName(entry.name)}: its deflate data is corrupt (${(err as Error).message})`);
}

/** The typed error for a native job that did not succeed. */
export function nativeFailed(entry: ZipEntry, r: WriteResult): Error {
  switch (r.status) {
    case 'too-large': return tooLarge(entry);
    case 'corrupt': return corrupt(entry, new Error('invalid deflate data'));
    case 'no-memory': return new ExtractError('WRITE_FAILED', `writing ${describeName(entry.name)} failed: out of memory (raise the function's memory)`);
    case 'block-too-large': return new ArchiveError('ZIP_UNSUPPORTED', `entry ${describeName(entry.name)}: a deflate block in it spans more than ${STREAM_BLOCK_LIMIT} compressed bytes, ` +
      'which is not streamed (no common compressor writes such blocks): recompress the archive with zip');
    case 'map': return writeFailed(entry, r.error);
    default: return writeFailed(entry, r.error);
  }
}

export function checkSizeAndCrc(entry: ZipEntry, written: number, crc: number): void {
  if (written !== entry.uncompressedSize) {
    throw new ArchiveError('ENTRY_SIZE_MISMATCH', `entry ${describeName(entry.name)}: expected ${entry.uncompressedSize} bytes, got ${written}`);
  }
  if (crc >>> 0 !== entry.crc32 >>> 0) {
    throw new ArchiveError('ENTRY_CRC_MISMATCH', `entry ${describeName(entry.name)}: CRC-32 expected ${hex(entry.crc32)}, got ${hex(crc)} (corrupt archive: upload it again)`);
  }
}

const hex = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');
