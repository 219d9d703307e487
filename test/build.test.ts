/**
 * What `make build` ships: per architecture, a core layer zip within its budget holding
 * binaries for that architecture, and a Node layer zip. (make test runs the full build first.)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  test('a Node layer zip is built beside it', () => {
    const node = join(ROOT, 'dist', `snaploader-node-${arch}.zip`);
    expect(execFileSync('unzip', ['-Z1', node], { encoding: 'utf8' })).toContain('snaploader/node/bin/node');
  });
});
