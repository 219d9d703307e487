/**
 * The streaming engine over an in-memory archive (odd-sized chunks, to cross every boundary):
 * what it writes is byte-identical to what was zipped, and corrupt entries fail by name.
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants, crc32, deflateRawSync } from 'node:zlib';
import { ArchiveError, SnaploaderError } from '../src/errors';
import { extractGroups } from '../src/extract/extractor';
import { groupRanges } from '../src/extract/ranges';
import { PathFilter } from '../src/glob';
import { planPlacement } from '../src/plan';
import { lend, retire, SLAB_SIZE, slabCounts, takeSlab } from '../src/slabs';
import { Tree } from '../src/tree';
import { readCentralDirectory } from '../src/zip/directory';
import { bufferSource, deflateOneFixedBlock, pyZip, rawZip, rawZipBuffer, writeTree, zipDir, type PyEntry } from './support/archive';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'snaploader-extract-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

interface ExtractTestOptions {
  rangeSize?: number;
  concurrency?: number;
  bufferBudget?: number;
  failAfter?: number;
  /** Files are opened only once this settles: the consumer stalls, the network need not. */
  gate?: Promise<void>;
  /** Told the size of every chunk the engine pulls from the source. */
  pulled?: (n: number) => void;
  /** Chunks are views of slabs, lent as a connection lends them (slabs.ts). */
  lent?: boolean;
  /** The tree's directories are made only once this resolves, and the extraction is told so (Destinations.ready). */
  ready?: Promise<void>;
}

/**
 * The source's chunks copied into slabs the way a connection reads into them: views lent, a
 * slab retired when full. A slab taken again is first filled with 0x5a, so a view given back
 * while still in use reads garbage at once, not the same bytes by luck.
 */
function lentSource(source: ReturnType<typeof bufferSource>): ReturnType<typeof bufferSource> {
  let slab = takeSlab();
  let used = 0;
  const fresh = (): void => {
    const reusedBefore = slabCounts.reused;
    slab = takeSlab();
    if (slabCounts.reused > reusedBefore) slab.buf.fill(0x5a);
    used = 0;
  };
  return {
    ...source,
    stream: async (s: number, e: number) => {
      const inner = await source.stream(s, e);
      return (async function* () {
        for await (const chunk of inner) {
          if (SLAB_SIZE - used < chunk.length) {
            retire(slab);
            fresh();
          }
          const view = slab.buf.subarray(used, used + chunk.length);
          chunk.copy(view);
          used += chunk.length;
          lend(slab, view);
          yield view;
        }
      })();
    },
  };
}

async function extract(buf: Buffer, opts: ExtractTestOptions = {}): Promise<{ target: string; bytes: number; requests: number }> {
  const plain = opts.failAfter === undefined ? bufferSource(buf) : failingSource(buf, opts.failAfter);
  const source = opts.lent ? lentSource(plain) : plain;
  let requests = 0;
  const pulled = opts.pulled ?? (() => undefined);
  const counted = {
    ...source,
    stream: async (s: number, e: number) => {
      requests++;
      const inner = await source.stream(s, e);
      return (async function* () {
        for await (const chunk of inner) {
          pulled(chunk.length);
          yield chunk;
        }
      })();
    },
    read: (s: number, e: number) => (requests++, source.read(s, e)),
  };
  const directory = await readCentralDirectory(buf.length, buf, source.read);
  requests = 0;
  const plan = planPlacement(directory.entries, new PathFilter([], []), { memfdMinSize: Infinity, maxMemfds: 0, tmpBudget: 1 << 30, memoryBudget: null });
  const groups = groupRanges(plan.files, directory.entries, directory.directoryOffset, opts.rangeSize ?? 8 << 20, 256 << 10);
  const target = join(dir, 'tree');
  const tree = new Tree(target, process.pid);
  tree.prepare();
  try {
    const ready = opts.ready?.then(() => tree.mkdirs(plan.dirs));
    if (!ready) await tree.mkdirs(plan.dirs);
    const bytes = await extractGroups(counted, groups, { concurrency: opts.concurrency ?? 4, rangeSize: opts.rangeSize ?? 8 << 20, bufferBudget: opts.bufferBudget ?? 64 << 20 }, {
      ready,
      open: async (f) => {
        await opts.gate;
        return tree.openFile(f);
      },
      symlink: (f, t) => tree.symlink(f, t),
      createPath: (f) => tree.createPath(f),
      createFailed: (f, err) => tree.createFailed(f, err),
    });
    tree.commit();
    return { target, bytes, requests };
  } catch (err) {
    tree.abort();
    throw err;
  }
}

/** A source whose responses break once they pass offset `at` of the archive. */
function failingSource(buf: Buffer, at: number): ReturnType<typeof bufferSource> {
  const inner = bufferSource(buf);
  return {
    ...inner,
    stream: async (start: number, end: number) => (async function* () {
      for await (const chunk of await inner.stream(start, end)) {
        if (start >= at) throw new Error('connection reset by the test');
        start += chunk.length;
        yield chunk;
      }
    })(),
  };
}

/** Resolves once `count()` has not changed for three polls in a row, 100 ms apart. */
async function untilStill(count: () => number): Promise<void> {
  for (let last = -1, still = 0; still < 3; still = count() === last ? still + 1 : 0) {
    last = count();
    await new Promise((r) => setTimeout(r, 100));
  }
}

function randomBytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = i % 3 === 0 ? x >>> 24 : 97 + (i % 7); // half noise, half compressible
  }
  return b;
}

describe('extraction', () => {
  test('every file is byte-identical to its source (deflated, stored, nested, executable)', async () => {
    const src = join(dir, 'src');
    const files: Record<string, Buffer> = {
      'pkg/__init__.py': Buffer.from('X = 1\n'),
      'pkg/lib/libbig.so': randomBytes(3 * 1024 * 1024 + 17, 1),
      'pkg/data/empty.txt': Buffer.alloc(0),
      'top.bin': randomBytes(70000, 2),
    };
    writeTree(src, { ...files, 'bin/tool': { mode: 0o755, content: '#!/bin/sh\n' } });
    for (const stored of [false, true]) {
      const { target, bytes } = await extract(zipDir(src, join(dir, `a${stored}.zip`), { stored }));
      for (const [rel, content] of Object.entries(files)) expect(readFileSync(join(target, rel)).equals(content)).toBe(true);
      expect(statSync(join(target, 'bin/tool')).mode & 0o777).toBe(0o755);
      expect(statSync(join(target, 'top.bin')).mode & 0o777).toBe(0o644);
      expect(statSync(target).mode & 0o777).toBe(0o755);
      expect(bytes).toBe(Object.values(files).reduce((n, b) => n + b.length, 0) + 10);
      rmSync(target, { recursive: true });
    }
  });

  test('neighbouring entries share one ranged GET, up to the range size', async () => {
    const entries: PyEntry[] = Array.from({ length: 40 }, (_, i) => ({ name: `m/f${i}.py`, base64: randomBytes(5000, i).toString('base64') }));
    const buf = pyZip(entries);
    expect((await extract(buf)).requests).toBe(1);
    rmSync(join(dir, 'tree'), { recursive: true });
    const small = await extract(buf, { rangeSize: 20000 });
    expect(small.requests).toBeGreaterThan(5);
  });

  test('many big entries read ahead at once under a small memory budget: no deadlock, every byte right', async () => {
    // Eight groups, each wanting three 64 KiB sub-ranges, share a budget of two: read-ahead
    // must give way rather than hold budget while it waits for more.
    const entries: PyEntry[] = Array.from({ length: 12 }, (_, i) => ({ name: `big/f${i}.bin`, base64: randomBytes(300 * 1024, 100 + i).toString('base64'), method: 'stored' as const }));
    const { target, bytes } = await extract(pyZip(entries), { rangeSize: 64 * 1024, concurrency: 8, bufferBudget: 128 * 1024 });
    expect(bytes).toBe(12 * 300 * 1024);
    for (let i = 0; i < 12; i++) expect(readFileSync(join(target, `big/f${i}.bin`)).equals(randomBytes(300 * 1024, 100 + i))).toBe(true);
  }, 20000);

  test('while the consumer waits, archive bytes pulled stay within the read-ahead budget plus one window', async () => {
    // One 12 MiB entry read as three 4 MiB ranges with room for one range of read-ahead.
    // Stall the consumer at the entry's start: the range being read must not be fetched in
    // full behind its back (the socket holds it), only the budgeted read-ahead may be.
    const data = randomBytes(12 << 20, 9);
    const buf = pyZip([{ name: 'big.bin', base64: data.toString('base64'), method: 'stored' }]);
    let pulled = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const run = extract(buf, { rangeSize: 4 << 20, bufferBudget: 4 << 20, gate, pulled: (n) => (pulled += n) });
    await untilStill(() => pulled);
    const heldWhileWaiting = pulled;
    release();
    const { target, bytes } = await run;
    expect(bytes).toBe(data.length);
    expect(readFileSync(join(target, 'big.bin')).equals(data)).toBe(true);
    // budget + window (1 MiB) + the chunk that passed it + the local header's chunk
    expect(heldWhileWaiting).toBeLessThanOrEqual((4 << 20) + (1 << 20) + 2 * 7919);
    expect(heldWhileWaiting).toBeGreaterThan(4 << 20); // the read-ahead did happen
  }, 20000);

  test('its ranged GETs start before the destinations are ready, and nothing is written until they are', async () => {
    // Every kind of write: small files in batches, an entry of one job, one streamed over
    // several ranges, and a symlink, in directories that do not exist until `ready`.
    const big = randomBytes(10 << 20, 21);
    const buf = pyZip([
      { name: 'pkg/sub/a.py', text: 'A = 1\n' },
      { name: 'pkg/sub/b.py', text: 'B = 2\n'.repeat(100) },
      { name: 'pkg/mid.bin', base64: randomBytes(900 * 1024, 22).toString('base64') },
      { name: 'lib/deep/big.bin', base64: big.toString('base64'), method: 'stored' },
      { name: 'pkg/link', text: 'sub/a.py', mode: 0o120777 },
    ]);
    let pulled = 0;
    let release!: () => void;
    const ready = new Promise<void>((r) => (release = r));
    const run = extract(buf, { rangeSize: 4 << 20, bufferBudget: 4 << 20, ready, pulled: (n) => (pulled += n) });
    await untilStill(() => pulled);
    expect(pulled).toBeGreaterThan(1 << 20); // the GETs did not wait
    const [staging] = readdirSync(dir).filter((n) => n.startsWith('tree.partial-'));
    expect(readdirSync(join(dir, staging))).toEqual(['.snaploader']); // nothing written, no directory made
    release();
    const { target } = await run;
    expect(readFileSync(join(target, 'pkg/sub/b.py'), 'utf8')).toBe('B = 2\n'.repeat(100));
    expect(readFileSync(join(target, 'pkg/mid.bin')).equals(randomBytes(900 * 1024, 22))).toBe(true);
    expect(readFileSync(join(target, 'lib/deep/big.bin')).equals(big)).toBe(true);
    expect(readlinkSync(join(target, 'pkg/link'))).toBe('sub/a.py');
  }, 20000);

  test('destinations that cannot be made fail the extraction with their error, and leave no tree', async () => {
    const buf = pyZip([{ name: 'pkg/a.py', text: 'A = 1\n' }, { name: 'lib/big.bin', base64: randomBytes(9 << 20, 23).toString('base64') }]);
    const cause = new SnaploaderError('WRITE_FAILED', 'cannot create the directory "pkg" in the tree: EACCES: permission denied');
    await expect(extract(buf, { rangeSize: 4 << 20, ready: Promise.reject(cause) })).rejects.toBe(cause);
    expect(readdirSync(dir)).toEqual([]);
  }, 20000);

  test('a file of the tree that cannot be created for lack of space says /tmp is full and what to change', () => {
    const tree = new Tree(join(dir, 'tree'), process.pid);
    const full = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    const file = { rel: Buffer.from('pkg/a.py') } as Parameters<Tree['createFailed']>[0];
    expect(tree.createFailed(file, full).message).toMatch(/^cannot create "pkg\/a\.py" in .*\/tree: ENOSPC: no space left on device \(\/tmp is full: raise the function's ephemeral storage or lower SNAPLOADER_TMP_BUDGET\)$/);
    const other = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    expect(tree.createFailed(file, other).message).toMatch(/: EACCES: permission denied$/);
  });

  test('a directory that cannot be made is WRITE_FAILED, naming it and saying why', async () => {
    const tree = new Tree(join(dir, 'tree'), process.pid);
    tree.prepare();
    const [staging] = readdirSync(dir).filter((n) => n.startsWith('tree.partial-'));
    writeFileSync(join(dir, staging, 'a'), 'a file where a directory goes');
    const made = tree.mkdirs([Buffer.from('lib'), Buffer.from('a'), Buffer.from('a/b')]);
    await expect(made).rejects.toThrow(/^cannot create the directory "a" in .*\/tree: EEXIST: file already exists$/);
    await expect(made).rejects.toMatchObject({ code: 'WRITE_FAILED' });
    expect(statSync(join(dir, staging, 'lib')).isDirectory()).toBe(true); // made in order, up to the one that failed
    tree.abort();
  });

  test('read into reused slabs, every file is byte-identical: no view is given back while still in use', async () => {
    // Every path that holds a view: small files in batches, entries of one job each, entries
    // streamed over several ranges, local headers that straddle chunks, skipped bytes.
    const entries: PyEntry[] = [];
    // Noise, so the deflated archive is as large as the stored one (~14 MiB, ~55 slabs).
    const noise = (n: number): string => cryptoRandomBytes(n).toString('base64');
    for (let i = 0; i < 300; i++) entries.push({ name: `pkg/m${i}.py`, base64: noise(200 + (i * 37) % 3000) });
    for (let i = 0; i < 6; i++) entries.push({ name: `lib/one${i}.so`, base64: noise(700 * 1024 + i) });
    for (let i = 0; i < 3; i++) entries.push({ name: `lib/streamed${i}.so`, base64: noise(3 * 1024 * 1024 + i) });
    for (const method of ['deflated', 'stored'] as const) {
      const buf = pyZip(entries.map((e) => ({ ...e, method })));
      const before = { ...slabCounts };
      const { target } = await extract(buf, { lent: true, rangeSize: 1024 * 1024, bufferBudget: 2 * 1024 * 1024 });
      for (const e of entries) expect(readFileSync(join(target, e.name)).equals(Buffer.from(e.base64!, 'base64'))).toBe(true);
      const reused = slabCounts.reused - before.reused;
      expect(reused).toBeGreaterThan(10); // the premise: slabs were written again while views were held
      rmSync(target, { recursive: true });
    }
  }, 60000);

  test('a rerun replaces the previous tree of its own', async () => {
    const buf = pyZip([{ name: 'a.txt', text: 'one' }]);
    await extract(buf);
    const { target } = await extract(pyZip([{ name: 'b.txt', text: 'two' }]));
    expect(readdirSync(target).sort()).toEqual(['.snaploader', 'b.txt']);
  });

  test('a symlink planted at the target path is never followed or reused', async () => {
    const elsewhere = join(dir, 'elsewhere');
    writeTree(elsewhere, { '.snaploader/map': 'looks like ours' });
    symlinkSync(elsewhere, join(dir, 'tree'));
    const err = await extract(pyZip([{ name: 'a.txt', text: 'one' }])).catch((e: unknown) => e);
    expect((err as SnaploaderError).code).toBe('TARGET_DIR_IN_USE');
    expect(readdirSync(elsewhere)).toEqual(['.snaploader']);
    expect(readlinkSync(join(dir, 'tree'))).toBe(elsewhere);
  });

  test('a target directory that snaploader did not make is left alone', async () => {
    writeTree(join(dir, 'tree'), { 'precious.txt': 'keep me' });
    const err = await extract(pyZip([{ name: 'a.txt', text: 'one' }])).catch((e: unknown) => e);
    expect((err as SnaploaderError).code).toBe('TARGET_DIR_IN_USE');
    expect(readFileSync(join(dir, 'tree', 'precious.txt'), 'utf8')).toBe('keep me');
  });
});

describe('corrupt entries fail by name, and leave no tree behind', () => {
  const base = (): Buffer => pyZip([{ name: 'a.txt', text: 'hello hello hello hello' }, { name: 'b.txt', text: 'second entry' }]);
  const cdAt = (b: Buffer, n = 0): number => {
    let at = -1;
    for (let i = 0; i <= n; i++) at = b.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), at + 1);
    return at;
  };
  const cases: [string, () => Buffer, string, RegExp][] = [
    ['crc-mismatch', () => { const b = base(); b.writeUInt32LE(0xdeadbeef, cdAt(b) + 16); return b; }, 'ENTRY_CRC_MISMATCH', /"a\.txt": CRC-32 expected deadbeef, got/],
    ['inflates-larger-than-declared', () => { const b = base(); b.writeUInt32LE(5, cdAt(b) + 24); return b; }, 'ENTRY_SIZE_MISMATCH', /"a\.txt" inflates to more than its declared 5 bytes/],
    ['inflates-smaller-than-declared', () => { const b = base(); b.writeUInt32LE(500, cdAt(b) + 24); return b; }, 'ENTRY_SIZE_MISMATCH', /"a\.txt": expected 500 bytes, got 23/],
    ['local-name-differs', () => { const b = base(); b[30] = 0x7a; return b; }, 'ZIP_MALFORMED', /local header names it "z\.txt"/],
    ['overlapping-entries', () => { const b = base(); b.writeUInt32LE(0, cdAt(b, 1) + 42); return b; }, 'ZIP_MALFORMED', /share their data at offset 0/],
    ['compressed-size-past-next-entry', () => { const b = base(); b.writeUInt32LE(4000, cdAt(b) + 20); return b; }, 'ZIP_MALFORMED', /more than the \d+ bytes before the next entry/],
    ['corrupt-deflate-data', () => { const b = base(); b[30 + 5] = 0xff; return b; }, 'ZIP_MALFORMED', /"a\.txt": its deflate data is corrupt/],
    ['symlink-absolute', () => pyZip([{ name: 'evil', text: '/etc/passwd', mode: 0o120777 }]), 'ENTRY_NAME_UNSAFE', /symlink "evil" points to "\/etc\/passwd", outside the archive/],
    ['symlink-escapes', () => pyZip([{ name: 'd/evil', text: '../../x', mode: 0o120777 }]), 'ENTRY_NAME_UNSAFE', /symlink "d\/evil" points to "\.\.\/\.\.\/x", outside the archive/],
  ];
  test.each(cases)('%s', async (_name, make, code, message) => {
    const err = await extract(make()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnaploaderError);
    expect((err as ArchiveError).code).toBe(code);
    expect((err as ArchiveError).message).toMatch(message);
    expect(existsSync(join(dir, 'tree'))).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a symlink inside the archive is created as given', async () => {
    const { target } = await extract(pyZip([{ name: 'lib/libx.so.1', text: 'ELF' }, { name: 'lib/libx.so', text: 'libx.so.1', mode: 0o120777 }]));
    expect(readlinkSync(join(target, 'lib/libx.so'))).toBe('libx.so.1');
    expect(readFileSync(join(target, 'lib/libx.so'), 'utf8')).toBe('ELF');
  });
});

describe('entries too big to hold in memory stream through a native inflater', () => {
  const SIZE = 20 * 1024 * 1024 + 4321;
  /** Mostly noise: it deflates to ~15 MiB, many ranges long. */
  const content = (): Buffer => {
    const b = Buffer.alloc(SIZE);
    let x = 7;
    for (let i = 0; i < SIZE; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      b[i] = i % 4 === 0 ? 0 : x >>> 24;
    }
    return b;
  };
  const bigZip = (data: Buffer, patch: { crc32?: number; uncompressedSize?: number; deflated?: Buffer } = {}): Buffer => {
    const deflated = patch.deflated ?? deflateRawSync(data);
    return rawZipBuffer(rawZip([
      { name: 'lib/small.txt', data: Buffer.from('before\n') },
      { name: 'lib/libhuge.so', data: deflated, method: 8, compressedSize: deflated.length, uncompressedSize: patch.uncompressedSize ?? data.length, crc32: patch.crc32 ?? crc32(data) },
      { name: 'lib/after.txt', data: Buffer.from('after\n') },
    ]));
  };

  test('a deflated entry many ranges long arrives byte for byte, with its neighbours', async () => {
    const data = content();
    expect(deflateRawSync(data).length).toBeGreaterThan(10 << 20); // the premise: many 1 MiB ranges
    const { target, bytes } = await extract(bigZip(data), { rangeSize: 1024 * 1024, bufferBudget: 4 * 1024 * 1024 });
    expect(readFileSync(join(target, 'lib/libhuge.so')).equals(data)).toBe(true);
    expect(readFileSync(join(target, 'lib/small.txt'), 'utf8')).toBe('before\n');
    expect(readFileSync(join(target, 'lib/after.txt'), 'utf8')).toBe('after\n');
    expect(bytes).toBe(SIZE + 13);
  }, 30000);

  const failures: [string, () => Buffer, string, RegExp][] = [
    ['ENTRY_CRC_MISMATCH.streamed', () => bigZip(content(), { crc32: 0x12345678 }), 'ENTRY_CRC_MISMATCH', /"lib\/libhuge\.so": CRC-32 expected 12345678, got/],
    ['ENTRY_SIZE_MISMATCH.streamed-inflates-larger', () => bigZip(content(), { uncompressedSize: SIZE - 1 }), 'ENTRY_SIZE_MISMATCH', /"lib\/libhuge\.so" inflates to more than its declared/],
    ['ENTRY_SIZE_MISMATCH.streamed-inflates-smaller', () => bigZip(content(), { uncompressedSize: SIZE + 10 }), 'ENTRY_SIZE_MISMATCH', new RegExp(`"lib/libhuge\\.so": expected ${SIZE + 10} bytes, got ${SIZE}`)],
    ['ZIP_MALFORMED.streamed-corrupt-deflate', () => {
      // Two deflate runs back to back (a full flush between them); the second one's first
      // block header made invalid (BTYPE 11), ~10 MiB into the entry.
      const data = content();
      const head = deflateRawSync(data.subarray(0, 10 << 20), { finishFlush: constants.Z_FULL_FLUSH });
      const tail = deflateRawSync(data.subarray(10 << 20));
      tail[0] = 0x07;
      return bigZip(data, { deflated: Buffer.concat([head, tail]) });
    }, 'ZIP_MALFORMED', /"lib\/libhuge\.so": its deflate data is corrupt/],
    ['ZIP_UNSUPPORTED.deflate-block-over-1MiB', () => {
      const data = randomBytes(3 * 1024 * 1024, 9);
      const one = deflateOneFixedBlock(data);
      return rawZipBuffer(rawZip([{ name: 'lib/oneblock.so', data: one, method: 8, compressedSize: one.length, uncompressedSize: data.length, crc32: crc32(data) }]));
    }, 'ZIP_UNSUPPORTED', /"lib\/oneblock\.so": a deflate block in it spans more than 1048576 compressed bytes/],
  ];
  test.each(failures)('%s', async (_name, make, code, message) => {
    const err = await extract(make(), { rangeSize: 1024 * 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnaploaderError);
    expect((err as SnaploaderError).code).toBe(code);
    expect((err as SnaploaderError).message).toMatch(message);
    expect(readdirSync(dir)).toEqual([]);
  }, 30000);

  test('a response that breaks mid-entry fails with its own error, and the inflater lets go of the file', async () => {
    const err = await extract(bigZip(content()), { rangeSize: 1024 * 1024, failAfter: 3 * 1024 * 1024 }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('connection reset by the test');
    expect(readdirSync(dir)).toEqual([]);
  }, 30000);
});
