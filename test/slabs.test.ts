/**
 * Lent memory (src/slabs.ts): a slab is read into again only once its reader has left it and
 * every byte it lent has been given back; anything else given back is ignored.
 */
import { giveBack, lend, retire, slabCounts, takeSlab } from '../src/slabs';

describe('slabs', () => {
  test('a slab is reused once it is retired and every view has been given back, not before', () => {
    const slab = takeSlab();
    const a = slab.buf.subarray(0, 100);
    const b = slab.buf.subarray(100, 300);
    lend(slab, a);
    lend(slab, b);
    retire(slab);
    giveBack(a.subarray(0, 40));
    giveBack(a.subarray(40));
    expect(takeSlab()).not.toBe(slab); // b is still out
    giveBack(b);
    const reusedBefore = slabCounts.reused;
    expect(takeSlab()).toBe(slab);
    expect(slabCounts.reused).toBe(reusedBefore + 1);
  });

  test('every slab given back is reused before a new one is allocated, however many were out at once', () => {
    // More than any fixed free list would keep (it kept 32): a peak's slabs serve the next peak.
    const peak = Array.from({ length: 80 }, () => takeSlab());
    for (const slab of peak) {
      const v = slab.buf.subarray(0, 10);
      lend(slab, v);
      retire(slab);
      giveBack(v);
    }
    const before = { ...slabCounts };
    const again = Array.from({ length: 80 }, () => takeSlab());
    expect(slabCounts.allocated).toBe(before.allocated);
    expect(slabCounts.reused).toBe(before.reused + 80);
    expect(again.every((slab) => peak.includes(slab))).toBe(true); // the same slabs, none fresh
  });

  test('a slab still being read into is not reused, whatever was given back', () => {
    const slab = takeSlab();
    const v = slab.buf.subarray(0, 10);
    lend(slab, v);
    giveBack(v);
    expect(takeSlab()).not.toBe(slab);
  });

  test('bytes that are not a slab\'s are ignored, lent or given back', () => {
    const slab = takeSlab();
    const copy = Buffer.from(slab.buf.subarray(0, 10));
    lend(slab, copy); // not a view of the slab: not counted
    retire(slab);
    giveBack(copy);
    giveBack(Buffer.alloc(64));
    expect(takeSlab()).toBe(slab);
  });

  test('giving back more than was lent is a bug, reported at once', () => {
    const slab = takeSlab();
    const v = slab.buf.subarray(0, 10);
    lend(slab, v);
    giveBack(v);
    expect(() => giveBack(v)).toThrow('slab given back 10 bytes more than it lent (a bug)');
  });
});
