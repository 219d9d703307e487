/**
 * The CPU limit: inflates every entry of a local zip with the engine's own inflater (libdeflate,
 * through the layer's native extractor, one entry at a time, output to /dev/null), and for
 * reference with Node's zlib, and reports the CPU time each took.
 *   node build/bench/inflate-only.js <zip> <snaploader-native.node>
 * Prints {"cpu_ms":N,"wall_ms":N,"zlib_cpu_ms":N,"bytes":N,"entries":N}. The central directory
 * is read by the engine's own reader (src/zip/directory.ts); reading the file is not timed.
 */
import { openSync, readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { readCentralDirectory, TAIL_BYTES } from '../src/zip/directory';

interface Addon {
  writeEntry(fd: number, parts: Buffer[], method: number, size: number): Promise<[number, number, number, number]>;
}

async function main(): Promise<void> {
  const zip = readFileSync(process.argv[2]);
  const mod = { exports: {} as Addon };
  process.dlopen(mod, process.argv[3]);
  const tail = zip.subarray(Math.max(0, zip.length - TAIL_BYTES));
  const dir = await readCentralDirectory(zip.length, tail, async (s, e) => zip.subarray(s, e));
  const deflated = dir.entries.filter((e) => !e.isDirectory && e.method === 8).map((e) => {
    const at = e.localHeaderOffset;
    const dataAt = at + 30 + zip.readUInt16LE(at + 26) + zip.readUInt16LE(at + 28);
    return { data: zip.subarray(dataAt, dataAt + e.compressedSize), size: e.uncompressedSize };
  });

  const c0 = process.cpuUsage();
  const w0 = performance.now();
  let bytes = 0;
  for (const e of deflated) {
    const [status, , , written] = await mod.exports.writeEntry(openSync('/dev/null', 'w'), [e.data], 8, e.size);
    if (status !== 0) throw new Error(`native inflate failed (status ${status})`);
    bytes += written;
  }
  const c = process.cpuUsage(c0);
  const wall = performance.now() - w0;

  const z0 = process.cpuUsage();
  for (const e of deflated) inflateRawSync(e.data, { chunkSize: 1 << 20 });
  const z = process.cpuUsage(z0);
  process.stdout.write(`${JSON.stringify({ cpu_ms: (c.user + c.system) / 1000, wall_ms: wall, zlib_cpu_ms: (z.user + z.system) / 1000, bytes, entries: deflated.length })}\n`);
}

main().catch((err) => {
  process.stderr.write(`inflate-only: ${err?.stack ?? err}\n`);
  process.exit(1);
});
