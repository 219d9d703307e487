/**
 * Node.js functions, end to end, as Lambda runs them: the real runtime interface emulator and
 * the real Node.js runtime interface client (aws-lambda-ric from npm, on the runtime's own
 * Node 22) start the function through wrapper.sh in the Lambda sandbox, with only the core
 * layer attached (the runtime's node runs the init program). The handlers are unchanged: their
 * packages exist only in the archive, in either layout users have. One of them is a real native
 * addon, better-sqlite3, built here from npm by node-gyp against the runtime's headers, large
 * enough to be placed in a memfd.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipDir } from './support/archive';
import { scratch } from './support/function';
import { json, withFunction, type FunctionConfig } from './support/lambda';
import { requireBuilt, ROOT } from './support/paths';
import { NODE_MAJOR, NODEJS, npmCiForRuntime } from '../src/dev/runtimes/nodejs';
import { LocalS3 } from './support/s3';

const BUCKET = 'functions';
const TREE = '/tmp/snaploader';
const FIXTURES = join(ROOT, 'test', 'fixtures', 'nodejs');
/** What the handlers use, from npm (fixtures/nodejs/packages), and what better-sqlite3 needs at run time. */
const PURE_PACKAGES = ['ms', 'camelcase', 'bindings', 'file-uri-to-path'];
let s3: LocalS3;
let work: ReturnType<typeof scratch>;
let tasks: { cjs: string; esm: string };

/** Copies the packages the functions need into `modules` (a node_modules directory); the addon into `addonModules`. */
function placePackages(installed: string, modules: string, addonModules: string): void {
  for (const p of PURE_PACKAGES) cpSync(join(installed, 'node_modules', p), join(modules, p), { recursive: true });
  cpSync(join(FIXTURES, 'shadowed'), join(modules, 'shadowed'), { recursive: true });
  const sqlite = join(installed, 'node_modules', 'better-sqlite3');
  for (const rel of ['package.json', 'lib', 'build/Release/better_sqlite3.node']) {
    cpSync(join(sqlite, rel), join(addonModules, 'better-sqlite3', rel), { recursive: true });
  }
}

/** A function's code: the fixture, with a node_modules of its own holding only `shadowed` (its own version). */
function task(name: 'cjs' | 'esm'): string {
  const dir = join(work.dir, 'task', name);
  cpSync(join(FIXTURES, name), dir, { recursive: true });
  mkdirSync(join(dir, 'node_modules', 'shadowed'), { recursive: true });
  writeFileSync(join(dir, 'node_modules', 'shadowed', 'package.json'), '{ "name": "shadowed", "version": "1.0.0", "main": "index.js" }\n');
  writeFileSync(join(dir, 'node_modules', 'shadowed', 'index.js'), "module.exports = 'the function';\n");
  return dir;
}

beforeAll(async () => {
  requireBuilt();
  const installed = npmCiForRuntime('nodejs-test-packages', join(FIXTURES, 'packages'));
  work = scratch('e2e-node');
  const root = join(work.dir, 'root');
  placePackages(installed, join(root, 'node_modules'), join(root, 'node_modules'));
  const layer = join(work.dir, 'layer');
  placePackages(installed, join(layer, 'nodejs', 'node_modules'), join(layer, 'nodejs', `node${NODE_MAJOR}`, 'node_modules'));
  s3 = await new LocalS3().start();
  await s3.createBucket(BUCKET);
  await s3.put(BUCKET, 'root.zip', zipDir(root, join(work.dir, 'root.zip')));
  await s3.put(BUCKET, 'layer.zip', zipDir(layer, join(work.dir, 'layer.zip')));
  tasks = { cjs: task('cjs'), esm: task('esm') };
}, 900000);

afterAll(async () => {
  await s3?.stop();
  work?.cleanup();
});

function config(handler: string, taskDir: string, key: string, env: Record<string, string> = {}): FunctionConfig {
  return {
    runtime: NODEJS,
    handler,
    task: taskDir,
    env: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh', ...s3.env(), SNAPLOADER_BUCKET: BUCKET, SNAPLOADER_KEY: key, ...env },
  };
}

/** Starts the function, invokes it once, stops it; a failed invoke fails with the function's log. */
async function invokeOnce(cfg: FunctionConfig, expectOk = true) {
  return withFunction(cfg, async (fn) => {
    const r = await fn.invoke({});
    if (expectOk && r.status !== 200) throw new Error(`invoke returned ${r.status}: ${r.body}\n${fn.functionLog().join('\n')}`);
    return { fn, r, pid: fn.bootstrapPid() };
  });
}

const ADDON = 'better-sqlite3/build/Release/better_sqlite3.node';
const LAYOUTS = [
  { key: 'root.zip', modules: `${TREE}/node_modules`, addon: `${TREE}/node_modules/${ADDON}` },
  { key: 'layer.zip', modules: `${TREE}/nodejs/node_modules`, addon: `${TREE}/nodejs/node${NODE_MAJOR}/node_modules/${ADDON}` },
];

describe.each(LAYOUTS)('a Node.js function whose packages are only in the archive ($key)', ({ key, addon }) => {
  test('a CommonJS handler requires a pure package, a native addon from a memfd, and imports an ES module only package, unchanged', async () => {
    const { fn, r, pid } = await invokeOnce(config('index.handler', tasks.cjs, key));
    expect(r.status).toBe(200);
    const out = json(r);
    expect(out).toMatchObject({
      ms: 7200000,
      camelCase: 'fromTheArchive',
      sqlite: { answer: 42, version: expect.stringMatching(/^3\.\d+\.\d+$/) },
      shadowed: 'the function', // the function's own node_modules comes first
      addonPath: addon,
      addonLink: expect.stringMatching(new RegExp(`^/proc/${pid}/fd/\\d+$`)),
      realpath: addon,
      nativeRealpath: addon,
      addonInMemfd: true,
      uid: 993,
      pid,
    });
    expect(String(out.node)).toMatch(new RegExp(`^v${NODE_MAJOR}\\.`));
    expect(String(out.nodeOptions)).toBe('--import="/opt/snaploader/nodejs/register.mjs"');
    expect(fn.snaploaderLog()).toEqual([expect.stringMatching(/^snaploader: loaded \d+ files .* 1 in memory /)]);
  });

  test('an ES module handler ("type": "module") imports them statically and dynamically, unchanged', async () => {
    const { r } = await invokeOnce(config('index.handler', tasks.esm, key));
    expect(r.status).toBe(200);
    expect(json(r)).toMatchObject({
      ms: 7200000,
      camelCase: 'fromTheArchive',
      dynamic: true,
      sqlite: { answer: 42 },
      shadowed: 'the function',
      addonPath: addon,
      realpath: addon,
      nativeRealpath: addon,
      addonInMemfd: true,
    });
  });

  test('an .mjs handler imports the ES module only package', async () => {
    const { r } = await invokeOnce(config('app.handler', tasks.esm, key));
    expect(json(r)).toEqual({ camelCase: 'mjsHandler', same: true, ms: '1m' });
  });
});

describe('the NODE_OPTIONS a Node.js function sets', () => {
  test('are kept, after the module hooks', async () => {
    const { r } = await invokeOnce(config('index.handler', tasks.cjs, 'root.zip', { NODE_OPTIONS: '--max-old-space-size=300 --enable-source-maps' }));
    expect(json(r).nodeOptions).toBe('--import="/opt/snaploader/nodejs/register.mjs" --max-old-space-size=300 --enable-source-maps');
  });
});

describe('a Node.js function without snaploader (the control)', () => {
  test('cannot find the packages: they are only in the archive', async () => {
    const { r } = await invokeOnce({ ...config('index.handler', tasks.cjs, 'root.zip'), env: {} }, false);
    expect(JSON.stringify(json(r))).toMatch(/Cannot find module 'ms'/);
  });
});
