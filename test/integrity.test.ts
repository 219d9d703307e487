/** SNAPLOADER_SHA256's building blocks: hashing ranges that arrive out of order, covering every byte. */
import { createHash, randomBytes } from 'node:crypto';
import { SnaploaderError } from '../src/errors';
import { coverWholeObject, OrderedHasher } from '../src/integrity';

test('ranges pushed in any order hash to the digest of the whole object', () => {
  const data = randomBytes(100000);
  const cuts = [0, 7, 5000, 5001, 42000, 99999, 100000];
  const pieces = cuts.slice(0, -1).map((s, i) => ({ s, b: data.subarray(s, cuts[i + 1]) }));
  const h = new OrderedHasher(data.length);
  for (const i of [3, 0, 5, 1, 4, 2]) h.push(pieces[i].s, pieces[i].b);
  expect(() => h.verify(createHash('sha256').update(data).digest('hex'), 's3://b/k')).not.toThrow();
});

test('a different object fails with INTEGRITY_MISMATCH naming both digests', () => {
  const h = new OrderedHasher(3);
  h.push(0, Buffer.from('abc'));
  let err: unknown;
  try {
    h.verify('0'.repeat(64), 's3://b/k');
  } catch (e) {
    err = e;
  }
  expect((err as SnaploaderError).code).toBe('INTEGRITY_MISMATCH');
  expect((err as SnaploaderError).message).toContain(createHash('sha256').update('abc').digest('hex'));
});

test('a hole in what was read is never passed as verified', () => {
  const h = new OrderedHasher(10);
  h.push(0, Buffer.alloc(4));
  h.push(6, Buffer.alloc(4));
  expect(() => h.verify(createHash('sha256').update(Buffer.alloc(10)).digest('hex'), 's3://b/k')).toThrow(/hashed 4 of 10 bytes/);
});

test('coverWholeObject fills every gap, in ranges no larger than the range size', () => {
  const groups = [{ start: 10, end: 20, files: ['a'] }, { start: 50, end: 60, files: ['b'] }];
  const covered = coverWholeObject(groups, 100, 16);
  expect(covered.map((g) => [g.start, g.end, g.files.length])).toEqual([
    [0, 10, 0], [10, 20, 1], [20, 36, 0], [36, 50, 0], [50, 60, 1], [60, 76, 0], [76, 92, 0], [92, 100, 0],
  ]);
});
