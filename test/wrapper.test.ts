/**
 * wrapper.sh as Lambda runs it: a subprocess with a clean environment. The init program is
 * pointed at an endpoint that refuses connections with SNAPLOADER_ON_ERROR=continue where a
 * test only needs to see the environment the runtime gets.
 */
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { OPT, PRELOAD, requireBuilt, WRAPPER } from './support/paths';
import { baseEnv, run } from './support/run';

const SHOW_ENV = ['/bin/sh', '-c', 'echo "pid=$$"; echo "LD_PRELOAD=${LD_PRELOAD-unset}"; echo "PYTHONPATH=${PYTHONPATH-unset}"'];
// Fails fast (connection refused), then the runtime starts untouched.
const UNREACHABLE = {
  SNAPLOADER_SOURCE: 's3://bucket/key.zip', SNAPLOADER_ON_ERROR: 'continue', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9',
  AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y',
};
let dir: string;

beforeAll(() => requireBuilt());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'snaploader-wrapper-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the layer, to add or remove parts of it. */
function layerCopy(): string {
  const opt = join(dir, 'opt');
  cpSync(OPT, opt, { recursive: true });
  return opt;
}

/** A `node` that records it was chosen, then runs the real one. */
function recordingNode(path: string, marker: string): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `#!/bin/sh\necho chosen > ${marker}\nexec ${process.execPath} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

test('without arguments it prints its usage and exits 2', async () => {
  const r = await run([], baseEnv());
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/^usage: .*wrapper\.sh <runtime> \[args\.\.\.\]/);
});

test('our preload library goes first and the user\'s LD_PRELOAD stays; PYTHONPATH is never set', async () => {
  const r = await run(SHOW_ENV, baseEnv({ ...UNREACHABLE, LD_PRELOAD: '/usr/lib/libuser.so' }));
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`LD_PRELOAD=${PRELOAD}:/usr/lib/libuser.so\n`);
  expect(r.stdout).toContain('PYTHONPATH=unset\n');
  expect(r.stdout).toContain(`pid=${r.pid}\n`);
});

test('a preload list that already holds our library is left as it is', async () => {
  const r = await run(SHOW_ENV, baseEnv({ ...UNREACHABLE, LD_PRELOAD: `/x.so:${PRELOAD}` }));
  expect(r.stdout).toContain(`LD_PRELOAD=/x.so:${PRELOAD}\n`);
});

test('SNAPLOADER_NODE wins over every other node', async () => {
  const marker = join(dir, 'marker');
  const node = recordingNode(join(dir, 'my-node'), marker);
  const r = await run(SHOW_ENV, baseEnv({ ...UNREACHABLE, SNAPLOADER_NODE: node }));
  expect(r.code).toBe(0);
  expect(readFileSync(marker, 'utf8')).toBe('chosen\n');
});

test("the Node layer's node is used before the one on PATH", async () => {
  const opt = layerCopy();
  const marker = join(dir, 'marker');
  recordingNode(join(opt, 'snaploader', 'node', 'bin', 'node'), marker);
  const r = await run(SHOW_ENV, baseEnv(UNREACHABLE), { command: join(opt, 'snaploader', 'wrapper.sh') });
  expect(r.code).toBe(0);
  expect(existsSync(marker)).toBe(true);
});

const { SNAPLOADER_ON_ERROR: _continue, ...STRICT } = UNREACHABLE;

test('with no node anywhere it says to attach the Node layer, and exits 127', async () => {
  const r = await run(SHOW_ENV, { ...STRICT, PATH: '/nonexistent' }, { command: WRAPPER });
  expect(r.code).toBe(127);
  expect(r.stderr).toBe('snaploader: no Node.js found for the init program: attach the snaploader Node layer (snaploader-node-<arch>.zip) or set SNAPLOADER_NODE\n');
});

function notExecutable(): string {
  const f = join(dir, 'not-node');
  writeFileSync(f, 'text', { mode: 0o644 });
  return f;
}

test('a SNAPLOADER_NODE that is not executable is named', async () => {
  const node = notExecutable();
  const r = await run(SHOW_ENV, baseEnv({ ...STRICT, SNAPLOADER_NODE: node }));
  expect(r.code).toBe(127);
  expect(r.stderr).toBe(`snaploader: SNAPLOADER_NODE=${node} is not an executable file\n`);
});

test('an incomplete layer is reported with what is missing', async () => {
  const opt = layerCopy();
  rmSync(join(opt, 'snaploader', 'bin', 'snaploader-helper'));
  const r = await run(SHOW_ENV, baseEnv(STRICT), { command: join(opt, 'snaploader', 'wrapper.sh') });
  expect(r.code).toBe(127);
  expect(r.stderr).toMatch(/^snaploader: .*\/bin\/snaploader-helper is missing: the snaploader layer is incomplete/);
  expect(r.stdout).toBe('');
});

test('with SNAPLOADER_ON_ERROR=continue, a wrapper failure warns and starts the runtime untouched', async () => {
  const node = notExecutable();
  const r = await run(SHOW_ENV, baseEnv({ ...UNREACHABLE, SNAPLOADER_NODE: node }));
  expect(r.code).toBe(0);
  expect(r.stderr).toBe(`snaploader: warning: SNAPLOADER_NODE=${node} is not an executable file; starting the runtime without the archive (SNAPLOADER_ON_ERROR=continue)\n`);
  expect(r.stdout).toBe(`pid=${r.pid}\nLD_PRELOAD=unset\nPYTHONPATH=unset\n`);
});

test('called through a symlink, it still finds the layer it belongs to', async () => {
  const link = join(dir, 'wrapper-link.sh');
  symlinkSync(WRAPPER, link);
  const r = await run(SHOW_ENV, baseEnv(UNREACHABLE), { command: link });
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`LD_PRELOAD=${PRELOAD}\n`);
});

test('SNAPLOADER_DEBUG turns on prefixed wrapper lines; they are off by default', async () => {
  const quiet = await run(SHOW_ENV, baseEnv(UNREACHABLE));
  expect(quiet.stderr).not.toContain('[snaploader:wrapper]');
  const loud = await run(SHOW_ENV, baseEnv({ ...UNREACHABLE, SNAPLOADER_DEBUG: '1' }));
  expect(loud.stderr).toMatch(/^\[snaploader:wrapper\] layer .*; node .*; LD_PRELOAD=/m);
});
