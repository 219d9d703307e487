/**
 * The native extractor writes through a reused 512 KiB window (output.c, the flush hook of our
 * libdeflate patch): whatever the size, the compression level or the block type, the file
 * holds exactly the entry's bytes and the CRC-32 is the entry's; an entry that inflates past
 * its declared size is refused before a byte past that size is written; a batch of files is
 * created, written and closed by one job, and a file that cannot be created is named by its
 * own result. A large stored entry is checksummed and written by a thread of its own as it
 * is fed. Memory a job needs beyond its thread's own buffers (a multi-part entry of some
 * MiB gathered into one piece, a stream's input and window) comes back faulted in from the
 * bank (bank.c) for the next job, rather than being mapped fresh each time.
 */
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants, crc32, deflateRawSync } from 'node:zlib';
import { EntryStream, makeDirs, writeEntry, writeFiles } from '../src/native';

const MiB = 1024 * 1024;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'snaploader-window-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Bytes that compress a little (text-like runs, with repeats reaching back up to 32 KiB). */
function sample(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = i > 32768 && (x & 7) === 0 ? b[i - 32768 + ((x >>> 8) & 1023)] : 97 + ((x >>> 16) % 26);
  }
  return b;
}

const sizes = [0, 1, 65535, MiB - 1, MiB, MiB + 1, MiB + 65536 + 7, 3 * MiB + 12345];
const levels: [string, number][] = [['stored blocks', constants.Z_NO_COMPRESSION], ['fastest', 1], ['best', 9]];

describe('a whole entry through the window', () => {
  for (const size of sizes) {
    for (const [label, level] of levels) {
      test(`${size} bytes, ${label}: the file holds exactly the entry, with its CRC-32`, async () => {
        const data = sample(size, size + level);
        const packed = deflateRawSync(data, { level });
        const path = join(dir, 'out');
        const fd = openSync(path, 'w');
        // Three parts, as response chunks would split it.
        const parts = [packed.subarray(0, packed.length >> 2), packed.subarray(packed.length >> 2, packed.length >> 1), packed.subarray(packed.length >> 1)];
        const r = await writeEntry(fd, parts, 8, size);
        expect(r.status).toBe('ok');
        expect(r.written).toBe(size);
        expect(r.crc).toBe(crc32(data));
        expect(readFileSync(path).equals(data)).toBe(true);
      });
    }
  }

  test('an entry that inflates past its declared size is refused, and nothing past that size is written', async () => {
    const data = sample(3 * MiB, 3);
    const path = join(dir, 'out');
    const fd = openSync(path, 'w');
    const r = await writeEntry(fd, [deflateRawSync(data)], 8, 2 * MiB + 5);
    expect(r.status).toBe('too-large');
    expect(statSync(path).size).toBeLessThanOrEqual(2 * MiB + 5);
  });

  test('an entry shorter than declared reports what it wrote, for the caller to refuse', async () => {
    const data = sample(MiB + 100, 4);
    const fd = openSync(join(dir, 'out'), 'w');
    const r = await writeEntry(fd, [deflateRawSync(data)], 8, MiB + 200);
    expect(r.status).toBe('ok');
    expect(r.written).toBe(MiB + 100);
  });
});

describe('a streamed entry through the window', () => {
  for (const [label, level] of levels) {
    test(`9 MiB, ${label}, fed in 61 KiB pieces: the file holds exactly the entry`, async () => {
      const data = sample(9 * MiB + 333, 40 + level);
      const packed = deflateRawSync(data, { level });
      const path = join(dir, 'out');
      const fd = openSync(path, 'w');
      const stream = new EntryStream(fd, 8, data.length, packed.length);
      for (let at = 0; at < packed.length; at += 61 * 1024) await stream.feed(packed.subarray(at, at + 61 * 1024));
      const r = await stream.done();
      closeSync(fd);
      expect(r.status).toBe('ok');
      expect(r.crc).toBe(crc32(data));
      expect(readFileSync(path).equals(data)).toBe(true);
    }, 20000);
  }
});

describe('a streamed entry whose declared sizes are zero', () => {
  test('deflated, with no compressed bytes: refused as corrupt', async () => {
    const fd = openSync(join(dir, 'out'), 'w');
    const r = await new EntryStream(fd, 8, 9 * MiB, 0).done();
    closeSync(fd);
    expect(r.status).toBe('corrupt');
  });

  test('deflated, declared empty but inflating to bytes: refused as too large, nothing written', async () => {
    const packed = deflateRawSync(sample(MiB, 60));
    const path = join(dir, 'out');
    const fd = openSync(path, 'w');
    const stream = new EntryStream(fd, 8, 0, packed.length);
    await stream.feed(packed);
    const r = await stream.done();
    closeSync(fd);
    expect(r.status).toBe('too-large');
    expect(statSync(path).size).toBe(0);
  });

  test('stored and empty: written as an empty file', async () => {
    const fd = openSync(join(dir, 'out'), 'w');
    const r = await new EntryStream(fd, 0, 0, 0).done();
    closeSync(fd);
    expect(r).toMatchObject({ status: 'ok', written: 0, crc: 0 });
  });
});

describe('a stored entry streamed as it arrives', () => {
  const feedAll = async (stream: EntryStream, data: Buffer, piece: number): Promise<void> => {
    for (let at = 0; at < data.length && !stream.failed; at += piece) await stream.feed(data.subarray(at, at + piece));
  };

  test('9 MiB fed in 61 KiB pieces: the file holds exactly the entry, with its CRC-32', async () => {
    const data = sample(9 * MiB + 333, 50);
    const path = join(dir, 'out');
    const fd = openSync(path, 'w');
    const stream = new EntryStream(fd, 0, data.length, data.length);
    await feedAll(stream, data, 61 * 1024);
    const r = await stream.done();
    closeSync(fd);
    expect(r).toMatchObject({ status: 'ok', written: data.length, crc: crc32(data) });
    expect(readFileSync(path).equals(data)).toBe(true);
  });

  test('bytes past the declared size are refused, and nothing past that size is written', async () => {
    const data = sample(3 * MiB, 51);
    const path = join(dir, 'out');
    const fd = openSync(path, 'w');
    const stream = new EntryStream(fd, 0, 2 * MiB + 5, data.length);
    await feedAll(stream, data, 64 * 1024);
    const r = await stream.done();
    closeSync(fd);
    expect(r.status).toBe('too-large');
    expect(statSync(path).size).toBeLessThanOrEqual(2 * MiB + 5);
  });

  test('an aborted stream ends as aborted, and its thread is off the file before done() resolves', async () => {
    const data = sample(4 * MiB, 52);
    const fd = openSync(join(dir, 'out'), 'w');
    const stream = new EntryStream(fd, 0, 9 * MiB, 9 * MiB);
    await stream.feed(data);
    stream.abort();
    const r = await stream.done();
    closeSync(fd);
    expect(r.status).toBe('aborted');
  });
});

describe('a batch of small files', () => {
  test('every file is created with its mode and holds its entry', async () => {
    const files = Array.from({ length: 40 }, (_, i) => ({ data: sample(i * 997, i), mode: i % 2 ? 0o755 : 0o644 }));
    const results = await writeFiles(files.map((f, i) => ({
      path: Buffer.from(join(dir, `f${i}`)), mode: f.mode, method: i % 3 ? 8 : 0, size: f.data.length,
      parts: [i % 3 ? deflateRawSync(f.data) : f.data],
    })));
    results.forEach((r, i) => {
      expect(r).toMatchObject({ status: 'ok', written: files[i].data.length, crc: crc32(files[i].data) });
      expect(readFileSync(join(dir, `f${i}`)).equals(files[i].data)).toBe(true);
      expect(statSync(join(dir, `f${i}`)).mode & 0o777).toBe(files[i].mode);
    });
  });

  test('a file that already exists is not written over: its own result says why, the others are written', async () => {
    writeFileSync(join(dir, 'taken'), 'mine');
    const results = await writeFiles(['first', 'taken', 'last'].map((name) => ({
      path: Buffer.from(join(dir, name)), mode: 0o644, method: 0 as const, size: 3, parts: [Buffer.from('new')],
    })));
    expect(results.map((r) => r.status)).toEqual(['ok', 'open', 'ok']);
    expect(results[1].error?.code).toBe('EEXIST');
    expect(readFileSync(join(dir, 'taken'), 'utf8')).toBe('mine');
    expect(readFileSync(join(dir, 'last'), 'utf8')).toBe('new');
  });

  test('the paths are copied when the batch is queued: the caller may reuse their buffers at once', async () => {
    const paths = ['p1', 'p2', 'p3'].map((name) => Buffer.from(join(dir, name)));
    const running = writeFiles(paths.map((path) => ({ path, mode: 0o644, method: 0 as const, size: 2, parts: [Buffer.from('ok')] })));
    for (const p of paths) p.fill(0x78, p.length - 2); // ".../xx": what the job would create had it kept a view
    expect((await running).map((r) => r.status)).toEqual(['ok', 'ok', 'ok']);
    expect(readdirSync(dir).sort()).toEqual(['p1', 'p2', 'p3']);
  });

  test('a path with a NUL byte in it is refused before anything is created', async () => {
    const path = Buffer.from(`${join(dir, 'a')}\0b`);
    await expect(writeFiles([{ path, mode: 0o644, method: 0, size: 1, parts: [Buffer.from('x')] }])).rejects.toThrow(/^writeFiles\(\[\[path, mode/);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('directories are made in order, from paths copied when the job is queued; one with a NUL is refused', async () => {
    const paths = ['d1', 'd1/d2'].map((name) => Buffer.from(join(dir, name)));
    const making = makeDirs(paths, 0o755);
    for (const p of paths) p.fill(0x78, p.length - 2);
    expect(await making).toBeNull();
    expect(statSync(join(dir, 'd1/d2')).isDirectory()).toBe(true);
    await expect(makeDirs([Buffer.from(`${join(dir, 'e')}\0f`)], 0o755)).rejects.toThrow(/^makeDirs\(\[path, \.\.\.\], mode\): each path a Buffer with no NUL in it$/);
    expect(readdirSync(dir)).toEqual(['d1']);
  });
});

describe('memory reused from one job to the next', () => {
  const faults = (): number => process.resourceUsage().minorPageFault;
  const pages = (bytes: number): number => Math.ceil(bytes / 4096);

  test('multi-part entries of some MiB, one after another, fault their gathered input in about once', async () => {
    const data = sample(3 * MiB, 77);
    const packed = deflateRawSync(data, { level: constants.Z_NO_COMPRESSION }); // 3 MiB to gather
    const parts = [packed.subarray(0, MiB), packed.subarray(MiB, 2 * MiB), packed.subarray(2 * MiB)];
    const run = async (i: number): Promise<void> => {
      const r = await writeEntry(openSync(join(dir, `e${i}`), 'w'), parts, 8, data.length);
      expect(r.status).toBe('ok');
    };
    // Every threadpool thread's own window and decompressor are faulted in by its first job.
    await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((i) => run(100 + i)));
    const before = faults();
    for (let i = 1; i <= 8; i++) await run(i);
    // Mapped fresh, each entry's gathered input alone is 768 faults: 6,144 for the eight.
    expect(faults() - before).toBeLessThan(pages(packed.length));
    expect(readFileSync(join(dir, 'e8')).equals(data)).toBe(true);
  });

  test('streams one after another fault their input and window in about once', async () => {
    const data = sample(9 * MiB, 78);
    const packed = deflateRawSync(data, { level: 1 });
    const pieces: Buffer[] = [];
    for (let at = 0; at < packed.length; at += 64 * 1024) pieces.push(packed.subarray(at, at + 64 * 1024));
    const run = async (i: number): Promise<void> => {
      const fd = openSync(join(dir, `s${i}`), 'w');
      const stream = new EntryStream(fd, 8, data.length, packed.length);
      for (const piece of pieces) await stream.feed(piece);
      const r = await stream.done();
      closeSync(fd);
      expect(r.status).toBe('ok');
    };
    await run(0);
    const before = faults();
    for (let i = 1; i <= 4; i++) await run(i);
    // Mapped fresh, each stream's first 2.5 MiB of input and its 512 KiB window are 768 faults.
    expect(faults() - before).toBeLessThan(pages(3 * MiB));
    expect(readFileSync(join(dir, 's4')).equals(data)).toBe(true);
  }, 20000);
});
