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
  // Every entry's local header offset, in order (a typed array sorts as numbers, without a comparator).
  const offsets = Float64Array.from(allEntries, (e) => e.localHeaderOffset).sort();
  for (let i = 1; i < offsets.length; i++) {
    if (offsets[i] === offsets[i - 1]) throw sharedData(allEntries, offsets[i]);
  }
  // In offset order (the order of most archives' directories already), so the next offset is a step away.
  const sorted = [...files].sort((a, b) => a.entry.localHeaderOffset - b.entry.localHeaderOffset);
  let at = 0;
  const groups: Group[] = [];
  let current: Group | null = null;
  for (const file of sorted) {
    const start = file.entry.localHeaderOffset;
    while (at < offsets.length && offsets[at] !== start) at++;
    if (at === offsets.length) throw new Error(`entry ${describeName(file.entry.name)} is not in the central directory given (a bug)`);
    const spanEnd = at + 1 < offsets.length ? offsets[at + 1] : directoryOffset;
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

/** The error for two entries whose data starts at the same offset. */
function sharedData(allEntries: ZipEntry[], offset: number): ArchiveError {
  const [first, second] = allEntries.filter((e) => e.localHeaderOffset === offset);
  return new ArchiveError('ZIP_MALFORMED', `entries ${describeName(first.name)} and ${describeName(second.name)} share their data at offset ${offset} (overlapping entries, as in a zip bomb)`);
}
