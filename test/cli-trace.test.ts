/**
 * `snaploader trace` and `pack --profile`: a real package set (onnxruntime and numpy from
 * PyPI) traced in the Lambda sandbox, packed again from the profile, and the smaller archive
 * run with the same event, which must give the same response.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTree } from './support/archive';
import { CACHE } from './support/cache';
import { jsonOf, snaploader } from './support/cli';
import { requireBuilt, ROOT } from './support/paths';
import { pipTarget } from './support/runtime-deps';

const TASK = join(ROOT, 'test', 'fixtures', 'onnxruntime');
const ENV = { SNAPLOADER_CACHE: CACHE, PATH: process.env.PATH ?? '/usr/bin:/bin' };
const LONG = { env: ENV, timeoutMs: 600000 };
let dir: string;
let site: string;

beforeAll(() => {
  requireBuilt();
  site = pipTarget('onnxruntime', join(TASK, 'requirements.txt'));
  dir = mkdtempSync(join(tmpdir(), 'cli-trace-'));
  writeFileSync(join(dir, 'event.json'), JSON.stringify({ x: Array.from({ length: 60 }, (_, i) => (i - 30) / 10) }));
}, 900000);
afterAll(() => dir && rmSync(dir, { recursive: true, force: true }));

test('trace then pack --profile gives a smaller archive that answers the same event the same way', async () => {
  const full = join(dir, 'full.zip');
  expect((await snaploader(['pack', site, '-o', full, '-q'], LONG)).code).toBe(0);
  const profilePath = join(dir, 'profile.json');
  const t = await snaploader(['trace', 'onnx_handler.handler', '--archive', full, '--event', join(dir, 'event.json'), '-o', profilePath, '--task', TASK, '--json'], LONG);
  expect(t.code).toBe(0);
  const profile = JSON.parse(readFileSync(profilePath, 'utf8'));
  expect(profile.archive.sha256).toBe(jsonOf(t).sha256);
  expect(profile.events).toEqual([join(dir, 'event.json')]);
  // Python's imports (open, in import order: the handler imports numpy first) and the extension
  // modules: loaded by dlopen, and still mapped at the end (the runtime's maps count them once more).
  expect(profile.files['numpy/__init__.py']).toEqual({ order: 0, count: 1 });
  expect(profile.files['onnxruntime/__init__.py']).toMatchObject({ count: 1 });
  expect(profile.files['onnxruntime/capi/__init__.py'].order).toBeGreaterThan(profile.files['onnxruntime/__init__.py'].order);
  expect(profile.files['onnxruntime/capi/onnxruntime_pybind11_state.cpython-311-x86_64-linux-gnu.so']).toMatchObject({ count: 2 });
  expect(profile.files['onnxruntime/datasets/sigmoid.onnx']).toBeDefined();
  expect(profile.used.files).toBeLessThan(profile.archive.files);

  const small = join(dir, 'small.zip');
  const p = await snaploader(['pack', site, '-o', small, '--profile', profilePath, '--json'], LONG);
  expect(p.code).toBe(0);
  const packed = jsonOf(p);
  expect(packed.profile.droppedFiles).toBeGreaterThan(0);
  expect(statSync(small).size).toBeLessThan(statSync(full).size);
  expect(packed.profile.savedBytes).toBe(statSync(full).size - statSync(small).size);
  process.stdout.write(`profile saving: ${packed.profile.droppedFiles} of ${profile.archive.files} files, ${packed.profile.droppedBytes} unpacked bytes, zip ${statSync(full).size} -> ${statSync(small).size}\n`);

  const runOf = async (zip: string) => {
    const r = await snaploader(['run', 'onnx_handler.handler', '--archive', zip, '--event', join(dir, 'event.json'), '--task', TASK, '--json'], LONG);
    expect(r.code).toBe(0);
    return jsonOf(r).response;
  };
  const before = await runOf(full);
  expect(before.version).toBe('1.32.0');
  expect(await runOf(small)).toEqual(before);

  // --order-only keeps every file, the used ones first.
  const ordered = join(dir, 'ordered.zip');
  const o = jsonOf(await snaploader(['pack', site, '-o', ordered, '--profile', profilePath, '--order-only', '--json'], LONG));
  expect(o.files).toBe(profile.archive.files - o.symlinks);
  expect(o.profile.droppedFiles).toBe(0);
}, 1800000);

test('a profile of another archive is refused naming both SHA-256s, and a missing event file is exit 3', async () => {
  const profilePath = join(dir, 'other-profile.json');
  writeFileSync(profilePath, JSON.stringify({ version: 1, archive: { path: 'x.zip', sha256: 'a'.repeat(64), bytes: 1, files: 1 }, handler: 'a.b', events: [], used: { files: 0, bytes: 0 }, files: {} }));
  writeTree(join(dir, 'libs'), { 'pkg/__init__.py': '' });
  const r = await snaploader(['pack', join(dir, 'libs'), '-o', join(dir, 'x.zip'), '--profile', profilePath]);
  expect(r.code).toBe(3);
  expect(r.stderr).toMatch(new RegExp(`PROFILE_MISMATCH: profile .* was recorded for an archive with SHA-256 ${'a'.repeat(64)} .* packs to SHA-256 [0-9a-f]{64}`));
  expect((await snaploader(['pack', join(dir, 'libs'), '-o', join(dir, 'x.zip'), '-q'])).code).toBe(0);
  const missing = await snaploader(['trace', 'app.handler', '--archive', join(dir, 'x.zip'), '--event', join(dir, 'nope.json'), '-o', join(dir, 'p.json')]);
  expect(missing.stderr).toMatch(/event file .*nope\.json does not exist/);
  expect(missing.code).toBe(3);
}, 600000);
