/** Placement and entry checks: decided before any file data is downloaded. */
import { ArchiveError, BudgetError } from '../src/errors';
import { PathFilter } from '../src/glob';
import { planPlacement, type Budgets } from '../src/plan';
import type { ZipEntry } from '../src/zip/directory';

const MiB = 1024 * 1024;
let offset = 0;
function entry(name: string | Buffer, size = 10, extra: Partial<ZipEntry> = {}): ZipEntry {
  const n = typeof name === 'string' ? Buffer.from(name) : name;
  return {
    index: 0, name: n, flags: 0, method: 8, crc32: 0, compressedSize: size, uncompressedSize: size,
    localHeaderOffset: (offset += 100), unixMode: 0o100644, isDirectory: n[n.length - 1] === 0x2f, isSymlink: false, ...extra,
  };
}
const all = new PathFilter([], []);
const budgets: Budgets = { memfdMinSize: 1 * MiB, maxMemfds: 512, tmpBudget: 384 * MiB, memoryBudget: null };

describe('placement', () => {
  test('files at or over SNAPLOADER_MEMFD_MIN_SIZE go to memfds, smaller ones to /tmp', () => {
    const p = planPlacement([entry('big.so', 2 * MiB), entry('edge.so', MiB), entry('small.py', MiB - 1)], all, budgets);
    expect(Object.fromEntries(p.files.map((f) => [f.rel.toString(), f.placement]))).toEqual({ 'big.so': 'memfd', 'edge.so': 'memfd', 'small.py': 'tmp' });
    expect(p.memfdBytes).toBe(3 * MiB);
  });

  test('the largest files win the memfds when SNAPLOADER_MAX_MEMFDS runs out', () => {
    const p = planPlacement([entry('a', 2 * MiB), entry('b', 5 * MiB), entry('c', 3 * MiB)], all, { ...budgets, maxMemfds: 2 });
    expect(p.files.filter((f) => f.placement === 'memfd').map((f) => f.rel.toString()).sort()).toEqual(['b', 'c']);
  });

  test('the memory budget caps memfd bytes; the rest goes to /tmp', () => {
    const p = planPlacement([entry('a', 4 * MiB), entry('b', 3 * MiB), entry('c', 2 * MiB)], all, { ...budgets, memoryBudget: 6 * MiB });
    expect(p.files.filter((f) => f.placement === 'memfd').map((f) => f.rel.toString()).sort()).toEqual(['a', 'c']);
  });

  test('/tmp use is counted in 4 KiB blocks', () => {
    const p = planPlacement([entry('a', 1), entry('b', 4097)], all, budgets);
    expect(p.tmpBytes).toBe(3 * 4096);
  });

  test('an archive that does not fit fails before downloading, naming the budget and what to change', () => {
    const entries = [entry('a', 10 * MiB), entry('b', 10 * MiB), ...Array.from({ length: 20 }, (_, i) => entry(`s${i}`, MiB - 1))];
    let err: unknown;
    try {
      planPlacement(entries, all, { ...budgets, maxMemfds: 1, tmpBudget: 8 * MiB });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BudgetError);
    expect((err as BudgetError).toLine()).toBe('BUDGET_EXCEEDED: the archive needs 30.0 MiB in /tmp but SNAPLOADER_TMP_BUDGET is 8.0 MiB ' +
      '(10.0 MiB in 1 files already goes to memory); 1 large files did not get a memfd because SNAPLOADER_MAX_MEMFDS=1 was reached. ' +
      "Raise SNAPLOADER_TMP_BUDGET (with the function's ephemeral storage), lower SNAPLOADER_MEMFD_MIN_SIZE, or leave files out with SNAPLOADER_EXCLUDE");
  });

  test('directories come parents first, including ones only implied by file paths', () => {
    const p = planPlacement([entry('x/y/z/f.txt'), entry('a/'), entry('x/g.txt')], all, budgets);
    expect(p.dirs.map(String)).toEqual(['a', 'x', 'x/y', 'x/y/z']);
  });

  test('SNAPLOADER_INCLUDE / SNAPLOADER_EXCLUDE filter files and count what they left out', () => {
    const p = planPlacement([entry('torch/a.py'), entry('torch/a.pyc'), entry('tests/t.py'), entry('other.py')],
      new PathFilter(['torch/**', 'tests/**'], ['*.pyc', 'tests/**']), budgets);
    expect(p.files.map((f) => f.rel.toString())).toEqual(['torch/a.py']);
    expect(p.filtered).toBe(3);
  });
});

describe('entries that are refused, with the entry named', () => {
  const cases: [string, ZipEntry[], string, RegExp][] = [
    ['absolute-path', [entry('/etc/passwd')], 'ENTRY_NAME_UNSAFE', /"\/etc\/passwd" is an absolute path/],
    ['dot-dot-segment', [entry('a/../../x')], 'ENTRY_NAME_UNSAFE', /has a "\.\." segment/],
    ['backslash', [entry('a\\..\\x')], 'ENTRY_NAME_UNSAFE', /contains a backslash/],
    ['drive-letter', [entry('C:/x')], 'ENTRY_NAME_UNSAFE', /starts with a drive letter/],
    ['control-byte', [entry(Buffer.from('a\nb'))], 'ENTRY_NAME_UNSAFE', /"a\\\\x0ab" contains a control byte/],
    ['empty-segment', [entry('a//b')], 'ENTRY_NAME_UNSAFE', /empty path segment/],
    ['over-long-name', [entry('a/'.repeat(2100))], 'ENTRY_NAME_UNSAFE', /4200-byte name/],
    ['reserved-directory', [entry('.snaploader/map')], 'ENTRY_NAME_UNSAFE', /reserves for its own files/],
    ['duplicate-name', [entry('a.txt'), entry('a.txt')], 'ENTRY_CONFLICT', /"a\.txt" appears twice/],
    ['file-and-directory', [entry('a'), entry('a/b')], 'ENTRY_CONFLICT', /"a" is both a file and a directory/],
    ['encrypted', [entry('s.so', 10, { flags: 1 })], 'ZIP_UNSUPPORTED', /"s\.so" is encrypted/],
    ['unsupported-method', [entry('s.so', 10, { method: 12 })], 'ZIP_UNSUPPORTED', /compression method 12/],
    ['stored-size-mismatch', [entry('s.so', 10, { method: 0, compressedSize: 11 })], 'ZIP_MALFORMED', /declares 11 bytes compressed but 10 uncompressed/],
  ];
  test.each(cases)('%s', (_name, entries, code, message) => {
    let err: unknown;
    try {
      planPlacement(entries, all, budgets);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ArchiveError);
    expect((err as ArchiveError).code).toBe(code);
    expect((err as ArchiveError).message).toMatch(message);
  });
});
