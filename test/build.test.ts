/**
 * What `make build` ships: per architecture, a core layer zip within its budget holding
 * binaries for that architecture, and a Node layer zip. (make test runs the full build first.)
 * And how the build gets libdeflate: the pinned release from crates.io, checked, with our patch.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from './support/paths';

const ELF_MACHINE: Record<string, number> = { x86_64: 0x3e, arm64: 0xb7 };

describe.each(['x86_64', 'arm64'])('%s', (arch) => {
  const zip = join(ROOT, 'dist', `snaploader-${arch}.zip`);
  let dir: string;
  beforeAll(() => {
    if (!existsSync(zip)) throw new Error(`${zip} is missing: run \`make build\``);
    dir = mkdtempSync(join(tmpdir(), `snaploader-layer-${arch}-`));
    execFileSync('unzip', ['-q', zip, '-d', dir]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('the core layer zip is within the 2 MiB budget', () => {
    expect(statSync(zip).size).toBeLessThanOrEqual(2 * 1024 * 1024);
  });

  test('it holds the wrapper, init program, Python hook and executables with the right modes', () => {
    const mode = (p: string): number => statSync(join(dir, p)).mode & 0o777;
    expect(mode('snaploader/wrapper.sh')).toBe(0o755);
    expect(mode('snaploader/bin/snaploader-helper')).toBe(0o755);
    expect(mode('snaploader/init.js')).toBe(0o644);
    expect(mode('snaploader/init-main.js')).toBe(0o644);
    // The code cache is made by running the Node layer's node, so only for this machine's architecture.
    const caches = existsSync(join(dir, 'snaploader/code-cache')) ? readdirSync(join(dir, 'snaploader/code-cache')) : [];
    expect(caches.map((f) => mode(`snaploader/code-cache/${f}`))).toEqual(arch === 'x86_64' ? [0o644] : []);
    expect(readFileSync(join(dir, 'python/snaploader.pth'), 'utf8')).toBe('import snaploader_site\n');
    expect(existsSync(join(dir, 'python/snaploader_site.py'))).toBe(true);
  });

  test(`its native code is built for ${arch}: a static helper, a glibc 2.17 preload library and extractor`, () => {
    for (const bin of ['snaploader/bin/snaploader-helper', 'snaploader/lib/libsnaploader.so', 'snaploader/lib/snaploader-native.node']) {
      const elf = readFileSync(join(dir, bin));
      expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
      expect(elf.readUInt16LE(18)).toBe(ELF_MACHINE[arch]);
    }
    const helper = readFileSync(join(dir, 'snaploader/bin/snaploader-helper'));
    expect(helper.includes(Buffer.from('ld-linux'))).toBe(false); // no interpreter: static
    for (const lib of ['snaploader/lib/libsnaploader.so', 'snaploader/lib/snaploader-native.node']) {
      const versions = execFileSync('readelf', ['-V', join(dir, lib)], { encoding: 'utf8' });
      const glibc = [...versions.matchAll(/GLIBC_2\.(\d+)/g)].map((m) => Number(m[1]));
      expect(Math.max(...glibc)).toBeLessThanOrEqual(17);
    }
    // The extractor is a Node-API addon: it takes napi_* from whichever Node loads it.
    const symbols = execFileSync('readelf', ['--dyn-syms', '-W', join(dir, 'snaploader/lib/snaploader-native.node')], { encoding: 'utf8' });
    expect(symbols).toMatch(/ napi_register_module_v1\b/);
    expect(symbols).not.toMatch(/ UND +node::/);
  });

  test('its extractor carries the CPU-dispatched CRC-32 (and on x86_64 the BMI2 inflater)', () => {
    // Compiled out if the compiler checks in libdeflate's cpu_features.h fail (they did with
    // zig's clang 16): CRC-32 then runs from a table, ~5x slower.
    const addon = join(dir, 'snaploader/lib/snaploader-native.node');
    if (arch === 'x86_64') {
      const asm = execFileSync('objdump', ['-d', addon], { encoding: 'utf8', maxBuffer: 64 << 20 });
      expect(asm).toMatch(/\bv?pclmul\w*qdq\b/);
      expect(asm).toMatch(/\b(shrx|bzhi)\b/);
    } else {
      // CRC32X: every aligned instruction word matching its encoding, 0x9ac04c00 | Rm << 16 | Rn << 5 | Rd.
      const code = readFileSync(addon);
      let crc32x = 0;
      for (let i = 0; i + 4 <= code.length; i += 4) if ((code.readUInt32LE(i) & 0xffe0fc00) >>> 0 === 0x9ac04c00) crc32x++;
      expect(crc32x).toBeGreaterThan(0);
    }
  });

  test("it ships libdeflate's licence, taken from the fetched source", () => {
    const copying = readFileSync(join(dir, 'snaploader/licenses/libdeflate/COPYING'), 'utf8');
    expect(copying).toMatch(/^Copyright \d{4}(-\d{4})? Eric Biggers/);
    expect(copying).toContain('Permission is hereby granted, free of charge');
  });

  test('a Node layer zip is built beside it', () => {
    const node = join(ROOT, 'dist', `snaploader-node-${arch}.zip`);
    expect(execFileSync('unzip', ['-Z1', node], { encoding: 'utf8' })).toContain('snaploader/node/bin/node');
  });
});

/**
 * Runs `body` (ES module code, awaited) with src/native/libdeflate-source.mjs imported as `src`;
 * returns what it printed, or the code and message of what it threw.
 */
function withSource(body: string): { ok: boolean; out: string; code?: string; message?: string } {
  const module = JSON.stringify(join(ROOT, 'src/native/libdeflate-source.mjs'));
  const script = `import * as src from ${module};
try { ${body} } catch (err) {
  process.stdout.write(JSON.stringify({ code: err.code, message: err.message, name: err.name }));
  process.exit(3);
}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status === 3) return { ok: false, out: r.stdout, ...JSON.parse(r.stdout) };
  if (r.status !== 0) throw new Error(`node exited with ${r.status}: ${r.stderr}`);
  return { ok: true, out: r.stdout };
}

describe("libdeflate's source", () => {
  let work: string;
  let archive: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'snaploader-libdeflate-'));
    // The pinned archive in the build's cache (fetched now if the build has not run).
    archive = withSource('process.stdout.write(await src.fetchLibdeflateArchive());').out;
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** A cache dir holding the pinned archive with `damage` applied to its bytes. */
  function cacheWith(name: string, damage: (bytes: Buffer) => Buffer): string {
    const cache = join(work, name);
    const path = withSource(`process.stdout.write(src.archivePath(${JSON.stringify(cache)}));`).out;
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, damage(readFileSync(archive)));
    return cache;
  }

  test('the pinned archive, laid out with our patch, has the block hook and the licence', () => {
    const out = join(work, 'good');
    withSource(`await src.prepareLibdeflate(${JSON.stringify(out)});`);
    expect(readFileSync(join(out, 'libdeflate.h'), 'utf8')).toContain('libdeflate_set_block_hook');
    expect(readFileSync(join(out, 'lib/decompress_template.h'), 'utf8')).toContain('d->block_hook(d->block_hook_ctx');
    expect(readFileSync(join(out, 'lib/x86/cpu_features.h'), 'utf8')).toContain('CLANG_PREREQ(3, 8, 7030000)');
    expect(existsSync(join(out, 'COPYING'))).toBe(true);
  });

  test('a cached copy with one byte changed stops the build with LIBDEFLATE_CHECKSUM_MISMATCH', () => {
    const cache = cacheWith('corrupt', (bytes) => {
      const copy = Buffer.from(bytes);
      copy[copy.length >> 1] ^= 0x01;
      return copy;
    });
    const out = join(work, 'from-corrupt');
    const r = withSource(`await src.prepareLibdeflate(${JSON.stringify(out)}, { cache: ${JSON.stringify(cache)} });`);
    expect(r).toMatchObject({ ok: false, name: 'LibdeflateSourceError', code: 'LIBDEFLATE_CHECKSUM_MISMATCH' });
    expect(r.message).toContain(join(cache, 'libdeflate-1.14'));
    expect(r.message).toMatch(/Delete it and build again/);
    expect(existsSync(out)).toBe(false); // nothing was laid out from it
  });

  test('a truncated cached copy is refused the same way, not downloaded over', () => {
    const cache = cacheWith('truncated', (bytes) => bytes.subarray(0, 4096));
    const r = withSource(`await src.fetchLibdeflateArchive({ cache: ${JSON.stringify(cache)} });`);
    expect(r).toMatchObject({ ok: false, code: 'LIBDEFLATE_CHECKSUM_MISMATCH' });
    expect(statSync(join(cache, 'libdeflate-1.14', 'libdeflate-sys-0.11.0.crate')).size).toBe(4096);
  });

  test('a patch that no longer applies stops the build with LIBDEFLATE_PATCH_FAILED and leaves no tree', () => {
    const patch = join(work, 'stale.patch');
    const ours = readFileSync(join(ROOT, 'src/native/libdeflate.patch'), 'utf8');
    // One context line of the hunk in decompress_template.h no longer matches the source.
    const stale = ours.replace('\t/* Starting to read the next block */\n', '\t/* Starting to read the following block */\n');
    expect(stale).not.toBe(ours);
    writeFileSync(patch, stale);
    const out = join(work, 'stale');
    const r = withSource(`await src.prepareLibdeflate(${JSON.stringify(out)}, { patch: ${JSON.stringify(patch)} });`);
    expect(r).toMatchObject({ ok: false, code: 'LIBDEFLATE_PATCH_FAILED' });
    expect(r.message).toContain('decompress_template.h');
    expect(existsSync(out)).toBe(false);
  });

});
