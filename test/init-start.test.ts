/**
 * What the init program loads at start (src/entry.ts, src/s3/http/connection.ts, build.mjs's
 * LAZY_SDK_MODULES): node:tls (and the thread parsing Node's root certificates that loading it
 * starts) only when the archive comes over HTTPS, and then before the program is compiled, so
 * that the thread works while the program starts; none of the parts of Node that a load does
 * not use (node:https, node:zlib, node:fs/promises, web streams, Web Crypto), which the SDK's
 * modules would load.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { s3UsesTls } from '../src/s3/endpoint';
import { writeTree, zipDir } from './support/archive';
import { NODE_OPT, OPT, requireBuilt } from './support/paths';
import { baseEnv, run, type RunResult } from './support/run';
import { LocalS3 } from './support/s3';

const BUCKET = 'init-start';
const LAYER_NODE = join(NODE_OPT, 'snaploader', 'node', 'bin', 'node');
let s3: LocalS3;
let dir: string;
let node: string;

/** What the node the layer starts had loaded when the program was compiled, and at exit. */
interface Loaded { atCompile: string[]; atExit: string[] }

beforeAll(async () => {
  requireBuilt();
  dir = mkdtempSync(join(tmpdir(), 'snaploader-init-start-'));
  writeTree(join(dir, 'tree'), { 'python/pkg/__init__.py': 'VALUE = 42\n' });
  s3 = await new LocalS3().start();
  await s3.createBucket(BUCKET);
  await s3.put(BUCKET, 'small.zip', zipDir(join(dir, 'tree'), join(dir, 'small.zip')));
  // --require is not a V8 flag: the layer's code cache is still used.
  const hook = join(dir, 'record-modules.cjs');
  writeFileSync(hook, `'use strict';
const vm = require('node:vm');
const { writeFileSync } = require('node:fs');
const names = () => process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
let atCompile = null;
const Script = vm.Script;
vm.Script = class extends Script { constructor(...args) { atCompile = names(); super(...args); } };
process.on('exit', () => writeFileSync(process.env.RECORD_MODULES, JSON.stringify({ atCompile, atExit: names() })));
`);
  node = join(dir, 'node');
  writeFileSync(node, `#!/bin/sh\nexec ${LAYER_NODE} --require ${hook} "$@"\n`, { mode: 0o755 });
}, 120000);

afterAll(async () => {
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Loads the small archive with the layer; a variable given as undefined is unset. */
async function load(env: Record<string, string | undefined>): Promise<{ r: RunResult; loaded: Loaded }> {
  const record = join(dir, `modules-${Math.random().toString(36).slice(2)}.json`);
  const all = baseEnv({
    ...s3.env(), SNAPLOADER_BUCKET: BUCKET, SNAPLOADER_KEY: 'small.zip', SNAPLOADER_NODE: node, RECORD_MODULES: record,
    SNAPLOADER_TARGET_DIR: join(dir, `target-${Math.random().toString(36).slice(2)}`),
  });
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete all[name];
    else all[name] = value;
  }
  const r = await run(['/bin/true'], all, { command: join(OPT, 'snaploader', 'wrapper.sh') });
  return { r, loaded: JSON.parse(readFileSync(record, 'utf8')) as Loaded };
}

/** Node's names for the parts a load does not use (checked against the layer's node below). */
const UNUSED = ['tls', 'https', 'zlib', 'fs/promises', 'internal/webstreams/readablestream', 'internal/crypto/webcrypto'];

test("the names looked for are the layer's node's own: a program that uses those parts loads them under these names", () => {
  const names = execFileSync(LAYER_NODE, ['-e', `require('node:https'); require('node:zlib'); require('node:fs/promises');
new ReadableStream(); globalThis.crypto.randomUUID();
console.log(JSON.stringify(process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13))));`], { encoding: 'utf8' });
  expect(JSON.parse(names)).toEqual(expect.arrayContaining(UNUSED));
});

test("over plain HTTP the init program loads the archive without loading node:tls, node:https, node:zlib, node:fs/promises, Node's web streams or its Web Crypto", async () => {
  const { r, loaded } = await load({});
  expect(r.stderr).toMatch(/loaded 1 files /);
  expect(r.code).toBe(0);
  expect(loaded.atExit).toEqual(expect.arrayContaining(['net', 'vm']));
  for (const unused of UNUSED) expect(loaded.atExit).not.toContain(unused);
});

test('over HTTPS node:tls is loaded before the program is compiled', async () => {
  // Nothing listens there: the load fails, after the program was compiled and tried to connect.
  const { r, loaded } = await load({ AWS_ENDPOINT_URL_S3: 'https://127.0.0.1:9', SNAPLOADER_MAX_ATTEMPTS: '1' });
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/ECONNREFUSED/);
  expect(loaded.atCompile).toContain('tls');
});

test('the SDK still reads its settings from ~/.aws/config (here the region) through the rewritten file reader', async () => {
  const home = join(dir, 'home');
  writeTree(home, { '.aws/config': '[default]\nregion = us-east-1\n' });
  const { r, loaded } = await load({ HOME: home, AWS_REGION: undefined });
  expect(r.stderr).toMatch(/loaded 1 files /);
  expect(r.code).toBe(0);
  expect(loaded.atExit).not.toContain('fs/promises');
  rmSync(join(home, '.aws', 'config'));
  const without = await load({ HOME: home, AWS_REGION: undefined });
  expect(without.r.code).not.toBe(0);
  expect(without.r.stderr).toMatch(/no AWS region/);
});

test.each([
  [{}, true],
  [{ AWS_ENDPOINT_URL_S3: 'https://s3.example.com' }, true],
  [{ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000' }, false],
  [{ AWS_ENDPOINT_URL_S3: ' HTTP://127.0.0.1:9000 ' }, false],
  [{ AWS_ENDPOINT_URL: 'http://minio:9000' }, false],
  [{ AWS_ENDPOINT_URL_S3: 'https://s3.example.com', AWS_ENDPOINT_URL: 'http://minio:9000' }, true],
  [{ AWS_ENDPOINT_URL_S3: '  ', AWS_ENDPOINT_URL: 'http://minio:9000' }, false],
])('the endpoint in %j is reached over TLS: %s', (env, tls) => {
  expect(s3UsesTls(env)).toBe(tls);
});
