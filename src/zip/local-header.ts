/**
 * An entry's local header (APPNOTE 4.3.7), read where the central directory says it is and
 * checked against it: the signature, the name, and that the data stays inside the entry's span.
 */
import { ArchiveError } from '../errors';
import { describeName, type ZipEntry } from './directory';

const LOCAL_SIG = 0x04034b50;
/** The fixed part of a local header; the name and the extra field follow it. */
export const LOCAL_HEADER = 30;

/** Sequential access to the archive's bytes, as much as a local header needs. */
export interface HeaderReader {
  /** Moves forward to `offset`, dropping the bytes before it. */
  skipTo(offset: number): Promise<void>;
  /** The next n bytes. */
  read(n: number): Promise<Buffer>;
}

/**
 * Reads the local header at the entry's offset and checks it against the central directory;
 * leaves the reader where the entry's data starts. `spanEnd` is where the next entry (or the
 * central directory) begins: the data must end before it.
 */
export async function readLocalHeader(reader: HeaderReader, entry: ZipEntry, spanEnd: number): Promise<void> {
  await reader.skipTo(entry.localHeaderOffset);
  const header = await reader.read(LOCAL_HEADER);
  if (header.readUInt32LE(0) !== LOCAL_SIG) {
    throw new ArchiveError('ZIP_MALFORMED', `entry ${describeName(entry.name)}: no local header at offset ${entry.localHeaderOffset}`);
  }
  const nameLen = header.readUInt16LE(26);
  const extraLen = header.readUInt16LE(28);
  const dataStart = entry.localHeaderOffset + LOCAL_HEADER + nameLen + extraLen;
  if (dataStart + entry.compressedSize > spanEnd) {
    throw new ArchiveError('ZIP_MALFORMED', `entry ${describeName(entry.name)}: its data runs into the next entry (overlapping entries)`);
  }
  const localName = await reader.read(nameLen);
  if (!localName.equals(entry.name)) {
    throw new ArchiveError('ZIP_MALFORMED', `entry ${describeName(entry.name)}: the local header names it ${describeName(localName)} (a spliced or corrupt archive)`);
  }
  await reader.skipTo(dataStart);
}
