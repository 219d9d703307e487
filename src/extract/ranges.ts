/**
 * Range planning: which ranged GETs fetch the planned entries. Entries that sit next to each
 * other are fetched together, up to the range size, reading through small gaps of unwanted
 * data; overlapping entries and data running into the next entry are refused.
 */
import { ArchiveError } from '../errors';
import type { PlannedFile } from '../plan';
import { describeName, type ZipEntry } from '../zip/directory';
import { LOCAL_HEADER } from '../zip/local-header';

export interface Group {
  start: number;
  end: number;
  files: { file: PlannedFile; spanEnd: number }[];
}

/**
 * Groups entries into ranges. Each entry's span runs from its local header to the next
 * local header in the archive (or the central directory): its data must lie inside it.
 */
export function groupRanges(files: PlannedFile[], allEntries: ZipEntry[], directoryOffset: number, rangeSize: number, maxGap: number): Group[] {
  const offsets = [...new Set(allEntries.map((e) => e.localHeaderOffset))].sort((a, b) => a - b);
  if (offsets.length !== allEntries.length) {
    const seen = new Map<number, ZipEntry>();
    for (const e of allEntries) {
      const other = seen.get(e.localHeaderOffset);
      if (other) {
        throw new ArchiveError('ZIP_MALFORMED', `entries ${describeName(other.name)} and ${describeName(e.name)} share their data at offset ${e.localHeaderOffset} (overlapping entries, as in a zip bomb)`);
      }
      seen.set(e.localHeaderOffset, e);
    }
  }
  const nextOffset = new Map<number, number>();
  for (let i = 0; i < offsets.length; i++) nextOffset.set(offsets[i], i + 1 < offsets.length ? offsets[i + 1] : directoryOffset);
  const sorted = [...files].sort((a, b) => a.entry.localHeaderOffset - b.entry.localHeaderOffset);
  const groups: Group[] = [];
  let current: Group | null = null;
  for (const file of sorted) {
    const start = file.entry.localHeaderOffset;
    const spanEnd = nextOffset.get(start)!;
    if (spanEnd - start < LOCAL_HEADER + file.entry.compressedSize) {
      throw new ArchiveError('ZIP_MALFORMED', `entry ${describeName(file.entry.name)} declares ${file.entry.compressedSize} compressed bytes, more than the ${spanEnd - start} bytes before the next entry (overlapping or truncated entries)`);
    }
    if (current && start - current.end <= maxGap && spanEnd - current.start <= rangeSize) {
      current.end = spanEnd;
      current.files.push({ file, spanEnd });
    } else {
      current = { start, end: spanEnd, files: [{ file, spanEnd }] };
      groups.push(current);
    }
  }
  return groups;
}
