/**
 * The PyPI ML-stack corpus: scipy, pandas, scikit-learn, onnxruntime, pyarrow and every
 * dependency, the CPython 3.11 manylinux2014 x86_64 wheels pinned with their hashes in
 * bench/pypi-requirements.txt (bench/pypi-requirements-quick.txt, six and python-dateutil, for
 * BENCH_QUICK=1), installed with `pip install --target <tree>/python` in a Lambda layer's layout
 * (`python/` at the archive root, which the engine accepts) and zipped with Info-ZIP
 * `zip -r -X` (deflate level 6).
 *
 * The wheels are downloaded once into ${SNAPLOADER_CACHE:-~/.cache/snaploader}/bench-pypi-<hash
 * of the requirements file>/ (pip checks every hash); the archive is cached under
 * .cache/bench/corpora-v<RECIPE_VERSION>/ by recipe version and requirements hash.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';
import { BIG_MIN, Corpus, RECIPE_VERSION, SMALL_LIMIT, zipTree } from './corpus';

export class PypiCorpusError extends Error {
  readonly code = 'BENCH_PYPI_CORPUS';
}

const PLATFORM = ['--only-binary=:all:', '--platform', 'manylinux2014_x86_64', '--python-version', '3.11', '--implementation', 'cp'];

function pip(args: string[], what: string): void {
  try {
    execFileSync('python3', ['-m', 'pip', ...args, '--disable-pip-version-check', '--no-input', '-q'], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer };
    throw new PypiCorpusError(`${what} failed (python3 -m pip ${args.join(' ')}):\n${e.stderr?.toString().trim().slice(-2000) ?? String(err)}\n` +
      'pip needs to reach PyPI the first time (python3-pip: make system-deps); a hash mismatch means bench/pypi-requirements*.txt is out of date');
  }
}

/** Every wheel of the requirements file, downloaded (and hash-checked) once into the shared cache. */
function ensureWheels(requirements: string, hash: string): string {
  const dir = join(process.env.SNAPLOADER_CACHE ?? join(homedir(), '.cache', 'snaploader'), `bench-pypi-${hash}`);
  const stamp = join(dir, '.complete');
  if (existsSync(stamp)) return dir;
  const partial = `${dir}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  pip(['download', '--no-deps', '--require-hashes', '-r', requirements, '-d', partial, ...PLATFORM], 'downloading the PyPI corpus wheels');
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir);
  writeFileSync(stamp, `${requirements}\n`);
  return dir;
}

function listFiles(dir: string, out: { path: string; size: number }[] = []): { path: string; size: number }[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) listFiles(p, out);
    else out.push({ path: p, size: st.isFile() ? st.size : 0 });
  }
  return out;
}

/** Builds (or finds in the cache) the PyPI ML-stack archive, deflated. */
export function ensurePypiCorpus(benchDir: string, cacheDir: string, quick: boolean, say: (s: string) => void): Corpus {
  const requirements = join(benchDir, quick ? 'pypi-requirements-quick.txt' : 'pypi-requirements.txt');
  const hash = createHash('sha256').update(readFileSync(requirements)).digest('hex').slice(0, 12);
  const id = `${quick ? 'quick-' : ''}pypi-${hash}-deflate`;
  const dir = join(cacheDir, `corpora-v${RECIPE_VERSION}`);
  mkdirSync(dir, { recursive: true });
  const metaPath = join(dir, `${id}.json`);
  if (existsSync(metaPath)) {
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as Corpus;
    if (existsSync(meta.zipPath) && statSync(meta.zipPath).size === meta.zipBytes) return meta;
  }
  const t0 = performance.now();
  const wheels = ensureWheels(requirements, hash);
  const tree = join(dir, `${id}.tree`);
  rmSync(tree, { recursive: true, force: true });
  say(`building corpus PyPI stack from ${requirements} (once; cached in ${dir})`);
  pip(['install', '--no-deps', '--no-index', '--find-links', wheels, '--require-hashes', '-r', requirements,
    '--target', join(tree, 'python'), '--no-compile', ...PLATFORM], 'installing the PyPI corpus wheels');
  const files = listFiles(tree);
  const zipPath = join(dir, `${id}.zip`);
  const z0 = performance.now();
  zipTree(tree, zipPath, 'deflate');
  const corpus: Corpus = {
    id,
    label: quick ? 'PyPI stack (quick subset)' : 'PyPI stack',
    kind: 'pypi',
    method: 'deflate',
    zipPath,
    zipBytes: statSync(zipPath).size,
    files: files.length,
    unpackedBytes: files.reduce((s, f) => s + f.size, 0),
    largest: files.map((f) => f.size).sort((a, b) => b - a).slice(0, 5),
    bigFiles: files.filter((f) => f.size > BIG_MIN).map((f) => ({ path: relative(tree, f.path), size: f.size, concatenated: false })),
    mediumFiles: files.filter((f) => f.size >= SMALL_LIMIT && f.size <= BIG_MIN).length,
    smallFiles: files.filter((f) => f.size < SMALL_LIMIT).length,
    buildSeconds: Math.round((performance.now() - t0) / 100) / 10,
    zipSeconds: Math.round((performance.now() - z0) / 100) / 10,
  };
  rmSync(tree, { recursive: true, force: true });
  writeFileSync(metaPath, `${JSON.stringify(corpus, null, 2)}\n`);
  say(`  ${corpus.label}: ${corpus.files} files, ${(corpus.unpackedBytes / 2 ** 20).toFixed(0)} MiB unpacked, ${(corpus.zipBytes / 2 ** 20).toFixed(0)} MiB zip`);
  return corpus;
}
