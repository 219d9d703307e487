/**
 * `pack --profile` on a small directory, without the sandbox: which files a profile keeps
 * (the keep rule of src/cli/profile-select.ts), in which order, and its refusals.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTree } from './support/archive';
import { jsonOf, snaploader } from './support/cli';

let dir: string;
let libs: string;
let sha256: string;

/** The archive's entry names, in the zip's order. */
function names(zip: string): string[] {
  return execFileSync('python3', ['-c', 'import sys, zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))', zip], { encoding: 'utf8' }).trim().split('\n');
}

function profileOf(files: string[], sha = sha256): string {
  const path = join(dir, `profile-${files.length}-${sha.slice(0, 6)}.json`);
  writeFileSync(path, JSON.stringify({
    version: 1, archive: { path: 'libs.zip', sha256: sha, bytes: 1, files: 10 }, handler: 'app.handler', events: [],
    used: { files: files.length, bytes: 0 }, files: Object.fromEntries(files.map((f, i) => [f, { order: i, count: 1 }])),
  }));
  return path;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cli-trace-pack-'));
  libs = join(dir, 'libs');
  writeTree(libs, {
    'pkg/__init__.py': '',
    'pkg/used.py': 'x = 1\n',
    'pkg/unused.py': 'y = 2\n'.repeat(1000),
    'pkg/sub/__init__.py': '',
    'pkg/sub/deep_unused.py': 'z = 3\n',
    'pkg-1.0.dist-info/METADATA': 'Name: pkg\n',
    'pkg-1.0.dist-info/RECORD': 'pkg/__init__.py,,\n',
    'pkg.pth': 'pkg\n',
    'lib/libfoo.so.1.2': 'ELF?'.repeat(100),
    'lib/libfoo.so.1': { symlink: 'libfoo.so.1.2' },
    'lib/libfoo.so': { symlink: 'libfoo.so.1' },
    'lib/libbar.so.1': 'bar',
    'lib/libbar.so': { symlink: 'libbar.so.1' },
    'data/model.bin': 'm'.repeat(5000),
    'data/extra.bin': 'e'.repeat(50),
  });
  const r = await snaploader(['pack', libs, '-o', join(dir, 'full.zip'), '--json']);
  expect(r.code).toBe(0);
  sha256 = jsonOf(r).sha256;
});
afterAll(() => dir && rmSync(dir, { recursive: true, force: true }));

describe('pack --profile', () => {
  test('keeps the used files first in profile order, package structure, metadata, --keep globs and every link a kept file needs', async () => {
    const out = join(dir, 'small.zip');
    const profile = profileOf(['pkg/used.py', 'lib/libfoo.so', 'pkg/__init__.py']);
    const r = await snaploader(['pack', libs, '-o', out, '--profile', profile, '--keep', 'data/model.*', '--json']);
    expect(r.code).toBe(0);
    const got = names(out);
    expect(got.slice(0, 3)).toEqual(['pkg/used.py', 'lib/libfoo.so', 'pkg/__init__.py']);
    expect(new Set(got)).toEqual(new Set([
      'pkg/used.py', 'lib/libfoo.so', 'pkg/__init__.py',
      // the link chain of a used link, down to the file
      'lib/libfoo.so.1', 'lib/libfoo.so.1.2',
      // package structure and metadata, used or not
      'pkg/sub/__init__.py', 'pkg-1.0.dist-info/METADATA', 'pkg-1.0.dist-info/RECORD', 'pkg.pth',
      // --keep
      'data/model.bin',
    ]));
    const j = jsonOf(r);
    // pkg/unused.py, pkg/sub/deep_unused.py, lib/libbar.so.1 (and its link), data/extra.bin
    expect(j.profile).toMatchObject({ used: 3, droppedFiles: 4, droppedBytes: 6000 + 6 + 3 + 50 });
    expect(j.profile.savedBytes).toBeGreaterThan(0);
  });

  test('a used file behind a link keeps the links to it', async () => {
    const out = join(dir, 'bar.zip');
    expect((await snaploader(['pack', libs, '-o', out, '--profile', profileOf(['lib/libbar.so.1']), '-q'])).code).toBe(0);
    expect(names(out)).toEqual(expect.arrayContaining(['lib/libbar.so.1', 'lib/libbar.so']));
  });

  test('--order-only keeps every file, the used ones first', async () => {
    const out = join(dir, 'ordered.zip');
    expect((await snaploader(['pack', libs, '-o', out, '--profile', profileOf(['data/extra.bin', 'pkg/used.py']), '--order-only', '-q'])).code).toBe(0);
    const got = names(out);
    expect(got.slice(0, 2)).toEqual(['data/extra.bin', 'pkg/used.py']);
    expect(new Set(got)).toEqual(new Set(names(join(dir, 'full.zip'))));
  });

  test('refuses a profile of another archive (naming both SHA-256s), one that is not a profile, and --keep without --profile', async () => {
    const out = join(dir, 'refused.zip');
    const other = await snaploader(['pack', libs, '-o', out, '--profile', profileOf(['pkg/used.py'], 'b'.repeat(64))]);
    expect(other.code).toBe(3);
    expect(other.stderr).toContain(`PROFILE_MISMATCH: profile ${join(dir, `profile-1-bbbbbb.json`)} was recorded for an archive with SHA-256 ${'b'.repeat(64)} (libs.zip), but ${libs} packs to SHA-256 ${sha256}`);
    const notJson = join(dir, 'not.json');
    writeFileSync(notJson, 'nope');
    const bad = await snaploader(['pack', libs, '-o', out, '--profile', notJson]);
    expect([bad.code, bad.stderr]).toEqual([3, expect.stringMatching(/PROFILE_INVALID: profile .*not\.json is not JSON/)]);
    expect((await snaploader(['pack', libs, '-o', out, '--keep', 'x'])).code).toBe(2);
    expect(execFileSync('ls', [dir], { encoding: 'utf8' })).not.toMatch(/refused\.zip/);
  });
});
