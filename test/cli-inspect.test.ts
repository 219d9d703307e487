/**
 * `snaploader inspect`: the init program's placement plan for a real archive (local, or on a
 * local S3 server), checked against the function's memory, /tmp, file descriptors and budgets.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawZip, writeSparse, writeTree, zipDir } from './support/archive';
import { jsonOf, snaploader } from './support/cli';
import { LocalS3 } from './support/s3';

const KiB = 1024;
const MiB = 1024 * KiB;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cli-inspect-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Two 600 KiB libraries, a module and a symlink, zipped with Info-ZIP as users do. */
let small: string | null = null;
function smallArchive(): string {
  if (small) return small;
  const src = join(dir, 'small');
  writeTree(src, {
    'lib/liba.so.1': Buffer.alloc(600 * KiB, 1),
    'lib/libb.so': Buffer.alloc(600 * KiB, 2),
    'lib/liba.so': { symlink: 'liba.so.1' },
    'pkg/__init__.py': 'x = 1\n',
  });
  zipDir(src, join(dir, 'small.zip'));
  return (small = join(dir, 'small.zip'));
}

describe('snaploader inspect', () => {
  test('shows the init program\'s plan: large files to memory within the function\'s memory, the rest to /tmp', async () => {
    const zip = smallArchive();
    const r = await snaploader(['inspect', zip, '--memory', '512', '--set', 'SNAPLOADER_MEMFD_MIN_SIZE=512K', '--json']);
    expect(r.code).toBe(0);
    const j = jsonOf(r);
    expect(j.fits).toBe(true);
    expect(j.plan).toMatchObject({ memfdFiles: 2, memfdBytes: 1200 * KiB, tmpFiles: 1, tmpBytes: 4096, symlinks: 1, fds: 2 });
    expect(j.budgets).toMatchObject({ memfdMinSize: 512 * KiB, maxMemfds: 512, memoryBudget: 256 * MiB });
    expect(Object.fromEntries(j.files.map((f: { path: string; placement: string }) => [f.path, f.placement]))).toEqual({
      'lib/liba.so.1': 'memfd', 'lib/libb.so': 'memfd', 'pkg/__init__.py': 'tmp', 'lib/liba.so': 'symlink',
    });
  });

  test('exits 5 naming the /tmp budget when the archive does not fit, and says which memory would fit', async () => {
    const zip = smallArchive();
    const args = ['inspect', zip, '--memory', '128', '--set', 'SNAPLOADER_MEMFD_MIN_SIZE=512K', '--set', 'SNAPLOADER_TMP_BUDGET=1M'];
    const text = await snaploader(args);
    expect(text.code).toBe(5);
    expect(text.stdout).toMatch(/FAIL tmp-budget: the archive needs 1\.2 MiB in \/tmp but SNAPLOADER_TMP_BUDGET is 1\.0 MiB/);
    expect(text.stdout).toMatch(/fits: no \(tmp-budget\)/);
    const j = jsonOf(await snaploader([...args, '--json']));
    expect(j.fits).toBe(false);
    expect(j.checks.filter((c: { ok: boolean }) => !c.ok).map((c: { budget: string }) => c.budget)).toEqual(['tmp-budget']);
    // One 600 KiB file in memory is enough: 256 MiB left to the runtime plus 600 KiB.
    expect(j.memoryThatFits).toBe(257);
    const fitted = await snaploader([...args.slice(0, 2), '--memory', '257', ...args.slice(4)]);
    expect(fitted.code).toBe(0);
  });

  test('fails the file-descriptor check when the memfds would leave the runtime too few of Lambda\'s 1,024', async () => {
    const src = join(dir, 'many');
    const spec: Record<string, string> = {};
    for (let i = 0; i < 900; i++) spec[`m/f${i}.so`] = `file ${i}\n`;
    writeTree(src, spec);
    zipDir(src, join(dir, 'many.zip'));
    const r = await snaploader(['inspect', join(dir, 'many.zip'), '--memory', '1024',
      '--set', 'SNAPLOADER_MEMFD_MIN_SIZE=1', '--set', 'SNAPLOADER_MAX_MEMFDS=1000', '--json']);
    expect(r.code).toBe(5);
    const fds = jsonOf(r).checks.find((c: { budget: string }) => c.budget === 'fds');
    expect(fds).toMatchObject({ ok: false, fix: expect.stringMatching(/lower SNAPLOADER_MAX_MEMFDS to 896 or less/) });
  });

  test('under SnapStart, /tmp is 512 MB whatever the /tmp budget says', async () => {
    const zip = join(dir, 'big.zip');
    writeSparse(rawZip([{ name: 'data/big.bin', hole: 600 * MiB }, { name: 'x.py', data: Buffer.from('x') }]), zip);
    const args = ['inspect', zip, '--memory', '128', '--set', 'SNAPLOADER_TMP_BUDGET=2G', '--json'];
    expect((await snaploader([...args, '--ephemeral-storage', '1024'])).code).toBe(0);
    const r = await snaploader([...args, '--snapstart']);
    expect(r.code).toBe(5);
    expect(jsonOf(r).checks.find((c: { ok: boolean }) => !c.ok)).toMatchObject({
      budget: 'ephemeral-storage', message: expect.stringMatching(/does not fit the function's 512 MB \/tmp \(SnapStart fixes it at 512 MB\)/),
    });
    const both = await snaploader([...args, '--snapstart', '--ephemeral-storage', '1024']);
    expect(both.code).toBe(2);
  });

  test('reads the archive from S3 with ranged GETs, and exits 3 naming a missing object', async () => {
    const s3 = await new LocalS3().start();
    try {
      await s3.createBucket('artifacts');
      const { readFileSync } = await import('node:fs');
      await s3.put('artifacts', 'libs/small.zip', readFileSync(smallArchive()));
      const ok = await snaploader(['inspect', 's3://artifacts/libs/small.zip', '--memory', '512', '--set', 'SNAPLOADER_MEMFD_MIN_SIZE=512K', '--json'], { env: s3.env() });
      expect(ok.code).toBe(0);
      expect(jsonOf(ok)).toMatchObject({ archive: 's3://artifacts/libs/small.zip', plan: { memfdFiles: 2, tmpFiles: 1 } });
      const missing = await snaploader(['inspect', 's3://artifacts/libs/nothing.zip'], { env: s3.env() });
      expect(missing.code).toBe(3);
      expect(missing.stderr).toMatch(/SOURCE_NOT_FOUND/);
    } finally {
      await s3.stop();
    }
  });

  test('exits 3 for a file that does not exist and 4 for one that is not a zip', async () => {
    const missing = await snaploader(['inspect', join(dir, 'nope.zip')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/INPUT_NOT_FOUND: cannot open .*nope\.zip: no such file/);
    writeFileSync(join(dir, 'text.zip'), 'not a zip at all');
    const notZip = await snaploader(['inspect', join(dir, 'text.zip'), '--json']);
    expect(notZip.code).toBe(4);
    expect(jsonOf(notZip).error).toMatchObject({ code: 'NOT_A_ZIP', exitCode: 4 });
  });

  test('rejects a bad command line with exit 2 and prints help on --help', async () => {
    expect((await snaploader(['inspect', 'a.zip', '--memory', 'lots'])).stderr).toMatch(/--memory must be a whole number from 128 to 10240/);
    expect((await snaploader(['inspect', 'a.zip', '--memry', '512'])).code).toBe(2);
    expect((await snaploader(['inspect', 'a.zip', '--set', 'FOO=1'])).code).toBe(2);
    const badValue = await snaploader(['inspect', 'a.zip', '--set', 'SNAPLOADER_TMP_BUDGET=lots']);
    expect(badValue.code).toBe(2);
    expect(badValue.stderr).toMatch(/SNAPLOADER_TMP_BUDGET="lots" is not a size/);
    const help = await snaploader(['inspect', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: snaploader inspect/);
  });
});
