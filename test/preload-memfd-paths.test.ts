/**
 * Memory-placed files resolve to their tree path (preload-c/memfd_paths.c), whoever resolves
 * them: a real memfd behind a tree link, as the init program lays it out, looked at by real
 * CPython (os.path.realpath, Path.resolve, glibc's realpath through ctypes, dlopen of the
 * result) and by real Node.js 20 and 22 (fs.realpathSync, its native variant, require). Each
 * case is run without the library too: that is what users met before.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRELOAD as BUILT_PRELOAD, requireBuilt, ROOT } from './support/paths';
import { ensureRuntimeNode } from '../src/dev/runtimes/nodejs';

// SNAPLOADER_TEST_PRELOAD runs the suite against another build of the library (an older one).
const PRELOAD = process.env.SNAPLOADER_TEST_PRELOAD ?? BUILT_PRELOAD;
const FIXTURES = join(ROOT, 'test', 'fixtures', 'preload');
const HOST_NODE = process.execPath;
let work: string;

beforeAll(() => {
  requireBuilt();
  work = mkdtempSync(join(tmpdir(), 'snaploader-memfd-paths-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Report = Record<string, Record<string, unknown>>;

/** Lays out a fresh tree (memfd_tree.py) and runs the probes in it, with or without the library. */
function probe(withLibrary: boolean, nodes: string[] = [HOST_NODE]): { tree: string; out: Record<string, Report> } {
  const dir = mkdtempSync(join(work, 'run-'));
  const tree = join(dir, 'tree');
  const map = join(dir, 'map');
  const commands = [['python3', join(FIXTURES, 'realpath_probe.py')], ...nodes.map((n) => [n, join(FIXTURES, 'realpath_probe.js')])];
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  if (withLibrary) Object.assign(env, { LD_PRELOAD: PRELOAD, SNAPLOADER_MAP: map });
  const stdout = execFileSync('python3', [join(FIXTURES, 'memfd_tree.py'), tree, map, ...commands.map((c) => JSON.stringify(c))], { env, encoding: 'utf8' });
  const out: Record<string, Report> = {};
  for (const line of stdout.trim().split('\n')) Object.assign(out, JSON.parse(line));
  return { tree, out };
}

describe('a tree link into a memfd', () => {
  test('resolves to itself for Python: os.path.realpath, Path.resolve, glibc realpath, and dlopen of the result', () => {
    const { tree, out } = probe(true);
    const py = out.python;
    for (const [name, target] of [['lib.so', 'lib.so'], ['data.js', 'data.js'], ['alias.js', 'data.js']]) {
      expect(py[name]).toMatchObject({ realpath: join(tree, target), resolve: join(tree, target), libc: join(tree, target) });
    }
    // The memfd links look like the regular files they stand for; an archive symlink stays one.
    expect([py['lib.so'].lstat_regular, py['data.js'].lstat_regular, py['alias.js'].lstat_regular]).toEqual([true, true, false]);
    expect(py.dlopen).toBe(true);
    // readlink still shows where the bytes are.
    expect(py['lib.so'].readlink).toMatch(/^\/proc\/\d+\/fd\/\d+$/);
  });

  test('resolves to itself for Node.js 20 and 22: fs.realpathSync, fs.realpathSync.native, require with its own __dirname', () => {
    const node22 = join(ensureRuntimeNode(), 'bin', 'node');
    const { tree, out } = probe(true, [HOST_NODE, node22]);
    for (const key of ['node20', 'node22']) {
      const n = out[key];
      expect(n['lib.so']).toEqual({ realpath: join(tree, 'lib.so'), native: join(tree, 'lib.so'), lstat_regular: true });
      expect(n['alias.js']).toEqual({ realpath: join(tree, 'data.js'), native: join(tree, 'data.js'), lstat_regular: false });
      expect(n.require).toEqual({ dirname: tree, filename: join(tree, 'data.js') });
    }
  });

  test('that no MEMFD record names is left as the kernel shows it', () => {
    const { out } = probe(true);
    expect(out.python['stray.bin']).toMatchObject({ realpath: '/memfd:stray.bin (deleted)', lstat_regular: false, libc: 'errno 2' });
    expect(out.node20['stray.bin']).toEqual({ realpath: 'ENOENT', native: 'ENOENT', lstat_regular: false });
  });

  test('without the library resolves to a "/memfd:" name that does not exist (what users met before)', () => {
    const { out } = probe(false);
    expect(out.python['lib.so']).toMatchObject({ realpath: '/memfd:lib.so (deleted)', libc: 'errno 2', lstat_regular: false });
    expect(String(out.python.dlopen)).toMatch(/memfd:lib\.so \(deleted\)/);
    expect(out.node20['data.js']).toEqual({ realpath: 'ENOENT', native: 'ENOENT', lstat_regular: false });
    expect(out.node20.require).toBe('ENOENT');
  });
});
