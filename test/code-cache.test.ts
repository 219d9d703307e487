/**
 * The init program's V8 code cache (src/entry.ts, made by the build for the Node layer's
 * node): that node compiles the program from it; any other node, or a cache V8 refuses,
 * compiles from source, says so in the debug log, and loads the archive all the same.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTree, zipDir } from './support/archive';
import { NODE_OPT, OPT, requireBuilt } from './support/paths';
import { baseEnv, run, type RunResult } from './support/run';
import { LocalS3 } from './support/s3';

const BUCKET = 'code-cache';
const LAYER_NODE = join(NODE_OPT, 'snaploader', 'node', 'bin', 'node');
let s3: LocalS3;
let dir: string;

beforeAll(async () => {
  requireBuilt();
  dir = mkdtempSync(join(tmpdir(), 'snaploader-code-cache-'));
  writeTree(join(dir, 'tree'), {
    'python/pkg/__init__.py': 'VALUE = 42\n',
    'python/pkg/libbig.so': Buffer.alloc(3 * 1024 * 1024, 7),
  });
  s3 = await new LocalS3().start();
  await s3.createBucket(BUCKET);
  await s3.put(BUCKET, 'small.zip', zipDir(join(dir, 'tree'), join(dir, 'small.zip')));
}, 120000);

afterAll(async () => {
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function load(node: string, opt = OPT): Promise<RunResult> {
  return run(['/bin/true'], baseEnv({
    ...s3.env(), SNAPLOADER_BUCKET: BUCKET, SNAPLOADER_KEY: 'small.zip', SNAPLOADER_DEBUG: '1',
    SNAPLOADER_TARGET_DIR: join(dir, `target-${Math.random().toString(36).slice(2)}`), SNAPLOADER_NODE: node,
  }), { command: join(opt, 'snaploader', 'wrapper.sh') });
}

const codeCacheLine = (r: RunResult): string => r.stderr.split('\n').find((l) => l.includes('code cache:')) ?? '(no code cache line)';

function cacheFiles(opt: string): string[] {
  return readdirSync(join(opt, 'snaploader', 'code-cache')).map((f) => join(opt, 'snaploader', 'code-cache', f));
}

test("the layer's cache is named after its program and the Node layer's node", () => {
  const id = createHash('sha256').update(readFileSync(join(OPT, 'snaploader', 'init-main.js'))).digest('hex').slice(0, 16);
  const version = execFileSync(LAYER_NODE, ['--version'], { encoding: 'utf8' }).trim();
  expect(cacheFiles(OPT).map((f) => f.slice(f.lastIndexOf('/') + 1))).toEqual([`${id}-${version}-x64.bin`]);
});

test("the Node layer's node compiles the program from the layer's code cache", async () => {
  const r = await load(LAYER_NODE);
  expect(r.stderr).toMatch(/loaded 2 files /);
  expect(r.code).toBe(0);
  expect(codeCacheLine(r)).toContain(`code cache: compiled from ${cacheFiles(OPT)[0]}`);
});

test('another node finds no cache for it, compiles from source and loads the archive', async () => {
  const r = await load(process.execPath);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/loaded 2 files /);
  expect(codeCacheLine(r)).toMatch(new RegExp(`code cache: none for node ${process.version.replace(/\./g, '\\.')} .*: compiled from source`));
});

test('a damaged cache is never given to V8: it is reported, and the program compiles from source and loads the archive', async () => {
  const opt = join(dir, 'opt-damaged');
  cpSync(OPT, opt, { recursive: true });
  const [cache] = cacheFiles(opt);
  const bytes = readFileSync(cache);
  for (let i = 64; i < bytes.length; i += 97) bytes[i] ^= 0x5a; // past the header: the checksum no longer matches
  writeFileSync(cache, bytes);
  const r = await load(LAYER_NODE, opt);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/loaded 2 files /);
  expect(codeCacheLine(r)).toContain(`code cache: ${cache} is damaged (its checksum does not match): compiled from source; re-attach the layer zip as built`);
});

test('a cache V8 refuses (made with other V8 flags) is reported, and the program compiles from source and loads the archive', async () => {
  // The same node with a V8 flag of its own: the flags are part of V8's check.
  const node = join(dir, 'node-with-flag');
  writeFileSync(node, `#!/bin/sh\nexec ${LAYER_NODE} --max-lazy "$@"\n`, { mode: 0o755 });
  const r = await load(node);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/loaded 2 files /);
  expect(codeCacheLine(r)).toContain(`code cache: V8 rejected ${cacheFiles(OPT)[0]} (another V8 build or other V8 flags): compiled from source`);
});

test('a layer without its program says it is incomplete, before the init program starts', async () => {
  const opt = join(dir, 'opt-incomplete');
  cpSync(OPT, opt, { recursive: true });
  rmSync(join(opt, 'snaploader', 'init-main.js'));
  const r = await load(LAYER_NODE, opt);
  expect(r.code).toBe(127);
  expect(r.stderr).toMatch(/init-main\.js is missing: the snaploader layer is incomplete/);
});
