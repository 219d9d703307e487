/**
 * The CPU limit: inflates every entry of a local zip with Node's zlib (the engine's inflater),
 * nothing written anywhere, and reports the CPU time it took.
 *   node build/bench/inflate-only.js <zip>
 * Prints {"cpu_ms":N,"wall_ms":N,"bytes":N,"entries":N}. The central directory is read by
 * the engine's own reader (src/zip-directory.ts); reading the file is not timed.
 */
import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { readCentralDirectory, TAIL_BYTES } from '../src/zip-directory';

async function main(): Promise<void> {
  const zip = readFileSync(process.argv[2]);
  const tail = zip.subarray(Math.max(0, zip.length - TAIL_BYTES));
  const dir = await readCentralDirectory(zip.length, tail, async (s, e) => zip.subarray(s, e));
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  let bytes = 0;
  let entries = 0;
  for (const e of dir.entries) {
    if (e.isDirectory || e.method !== 8) continue;
    const at = e.localHeaderOffset;
    const dataAt = at + 30 + zip.readUInt16LE(at + 26) + zip.readUInt16LE(at + 28);
    const out = inflateRawSync(zip.subarray(dataAt, dataAt + e.compressedSize), { chunkSize: 1 << 20 });
    bytes += out.length;
    entries++;
  }
  const c = process.cpuUsage(c0);
  process.stdout.write(`${JSON.stringify({ cpu_ms: (c.user + c.system) / 1000, wall_ms: performance.now() - w0, bytes, entries })}\n`);
}

main().catch((err) => {
  process.stderr.write(`inflate-only: ${err?.stack ?? err}\n`);
  process.exit(1);
});
