/**
 * The Node.js runtime's module hooks (layer/nodejs/), loaded the way wrapper.sh loads them
 * (NODE_OPTIONS=--import), in real Node.js processes: the machine's Node 20 (module.register,
 * hooks on their own thread) and the runtime's Node 22 (module.registerHooks, in thread).
 * A real package tree stands in for the archive.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from './support/paths';
import { ensureRuntimeNode } from '../src/dev/runtimes/nodejs';

const REGISTER = join(ROOT, 'layer', 'nodejs', 'register.mjs');
let work: string;

function write(rel: string, content: string): void {
  mkdirSync(dirname(join(work, rel)), { recursive: true });
  writeFileSync(join(work, rel), content);
}

function pkg(dir: string, name: string, files: Record<string, string>, manifest: Record<string, unknown> = {}): void {
  write(`${dir}/${name}/package.json`, JSON.stringify({ name, ...manifest }));
  for (const [f, c] of Object.entries(files)) write(`${dir}/${name}/${f}`, c);
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'snaploader-node-hooks-'));
  // The archive: two node_modules directories, searched in order.
  pkg('tree/node_modules', 'esm-only', { 'i.js': 'export default "esm-only from the tree";' }, { type: 'module', exports: { '.': { import: './i.js' } } });
  pkg('tree/node_modules', 'both', { 'i.js': 'module.exports = "both from the first directory";' }, { main: 'i.js' });
  pkg('tree/nodejs/node_modules', 'both', { 'i.js': 'module.exports = "both from the second directory";' }, { main: 'i.js' });
  pkg('tree/nodejs/node_modules', 'second-only', { 'i.js': 'module.exports = "second-only";' }, { main: 'i.js' });
  pkg('tree/node_modules', 'shadowed', { 'i.js': 'module.exports = "shadowed from the tree";' }, { main: 'i.js' });
  pkg('tree/node_modules', 'no-root', { 'sub.js': 'module.exports = "sub";' }, { exports: { './sub': './sub.js' } });
  // The function: its own node_modules holds its own "shadowed".
  pkg('task/node_modules', 'shadowed', { 'i.js': 'module.exports = "shadowed from the function";' }, { main: 'i.js' });
  write('task/handler.mjs', `
import esmOnly from 'esm-only';
import both from 'both';
import secondOnly from 'second-only';
import shadowed from 'shadowed';
const dynamic = (await import('esm-only')).default;
const code = async (s) => { try { await import(s); return 'resolved'; } catch (e) { return e.code; } };
console.log(JSON.stringify({ esmOnly, both, secondOnly, shadowed, dynamic, missing: await code('not-anywhere'), unexported: await code('no-root') }));
`);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(node: string, env: Record<string, string>): Record<string, string> {
  const out = execFileSync(node, [join(work, 'task', 'handler.mjs')], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_OPTIONS: `--import="${REGISTER}"`, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out);
}

const ARCHIVE_DIRS = () => `${join(work, 'tree', 'node_modules')}:${join(work, 'tree', 'nodejs', 'node_modules')}`;
const NODES: [string, () => string][] = [
  ['Node 20 (module.register)', () => process.execPath],
  ['Node 22 (module.registerHooks)', () => join(ensureRuntimeNode(), 'bin', 'node')],
];

describe.each(NODES)('import of archive packages on %s', (_name, node) => {
  test("resolves bare specifiers in the archive's directories in order, the function's own first", () => {
    expect(run(node(), { SNAPLOADER_NODE_MODULES: ARCHIVE_DIRS() })).toEqual({
      esmOnly: 'esm-only from the tree',
      both: 'both from the first directory',
      secondOnly: 'second-only',
      shadowed: 'shadowed from the function',
      dynamic: 'esm-only from the tree',
      missing: 'ERR_MODULE_NOT_FOUND',
      unexported: 'ERR_PACKAGE_PATH_NOT_EXPORTED', // the archive's answer, not a generic not-found
    });
  });

  test('without SNAPLOADER_NODE_MODULES does nothing: the import fails as it would without snaploader', () => {
    expect(() => run(node(), {})).toThrow(/Cannot find package 'esm-only'/);
  });
});
