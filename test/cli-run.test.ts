/**
 * `snaploader run`: the user's own handler and archive through the layer, in the Lambda
 * sandbox under the real emulator, against the embedded S3 server.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTree } from './support/archive';
import { jsonOf, snaploader } from './support/cli';
import { CACHE } from './support/cache';
import { requireBuilt } from './support/paths';

// The emulator and the runtime client come from the same cache as the other end-to-end tests (Go builds the emulator once).
const ENV = { SNAPLOADER_CACHE: CACHE, PATH: process.env.PATH ?? '/usr/bin:/bin' };

let dir: string;
beforeAll(() => {
  requireBuilt();
  dir = mkdtempSync(join(tmpdir(), 'cli-run-'));
  writeTree(join(dir, 'libs'), { 'greeting/__init__.py': 'WORDS = "hello from the archive"\n' });
  writeTree(join(dir, 'task'), {
    'app.py': 'import greeting\n\ndef handler(event, context):\n    return {"words": greeting.WORDS, "name": event.get("name"), "file": greeting.__file__}\n',
    'broken.py': 'import not_in_the_archive\n\ndef handler(event, context):\n    return 1\n',
  });
  writeFileSync(join(dir, 'event.json'), '{"name": "Ada"}');
}, 600000);
afterAll(() => dir && rmSync(dir, { recursive: true, force: true }));

describe('snaploader run', () => {
  test('runs the handler with the packed archive loaded by the layer, printing the response and the init summary', async () => {
    const zip = join(dir, 'libs.zip');
    expect((await snaploader(['pack', join(dir, 'libs'), '-o', zip, '-q'])).code).toBe(0);
    const r = await snaploader(['run', 'app.handler', '--archive', zip, '--event', join(dir, 'event.json'), '--task', join(dir, 'task'), '--json'], { env: ENV, timeoutMs: 300000 });
    const j = jsonOf(r);
    expect(r.code).toBe(0);
    expect(j.response).toEqual({ words: 'hello from the archive', name: 'Ada', file: '/tmp/snaploader/greeting/__init__.py' });
    expect(j.snaploader.join('\n')).toMatch(/^snaploader: loaded 1 files .* from s3:\/\/snaploader-run\/libs\.zip in [\d.]+ s/m);
    const text = await snaploader(['run', 'app.handler', '-a', zip, '--task', join(dir, 'task')], { env: ENV, timeoutMs: 300000 });
    expect(text.stdout).toMatch(/snaploader: loaded 1 files/);
    expect(text.stdout).toMatch(/response \(200\):\n\{\n {2}"words": "hello from the archive",\n {2}"name": null/);
  }, 600000);

  test('exits 8 with Lambda\'s error object when the function fails, and 3 when the archive is missing', async () => {
    const zip = join(dir, 'libs.zip');
    const r = await snaploader(['run', 'broken.handler', '--archive', zip, '--task', join(dir, 'task'), '--json'], { env: ENV, timeoutMs: 300000 });
    expect(r.code).toBe(8);
    expect(jsonOf(r).response).toMatchObject({ errorType: 'Runtime.ImportModuleError' });
    const missing = await snaploader(['run', 'app.handler', '--archive', join(dir, 'nope.zip'), '--task', join(dir, 'task')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/archive .*nope\.zip does not exist/);
    expect((await snaploader(['run', 'app', '--archive', zip])).code).toBe(2);
  }, 600000);
});
