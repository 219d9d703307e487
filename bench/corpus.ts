/**
 * Benchmark corpora, built from real binaries on this machine: shared libraries from the
 * system library directory and Python packages from the system Python, in the shape of an ML
 * stack (a few files over 100 MB, a few dozen of 1-100 MB, thousands of small ones).
 *
 * Files over 100 MB: the system's own when it has some (e.g. libLLVM), otherwise (and for the
 * rest) built by concatenating real shared libraries, so that their compressibility is that of
 * real machine code. Built once and cached under .cache/bench/, keyed by RECIPE_VERSION.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';

/** Bump when the recipe changes: cached corpora of another version are not reused. */
export const RECIPE_VERSION = 1;

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
/** "Large": the engine's default memfd threshold is 1 MiB. */
export const SMALL_LIMIT = MiB;
/** Real files over this size are "big" ones (torch's libtorch_cpu.so, cuDNN, ...). */
export const BIG_MIN = 100 * MiB;

/** The stack corpus's shape, scaled linearly for other sizes. */
export const STACK_SHAPE = {
  /** Unpacked size the shape is defined for. */
  bytes: 700 * MiB,
  /** Share of the bytes in files over 100 MB. */
  bigShare: 0.6,
  /** Typical size of one big file. */
  bigTypical: 140 * MiB,
  /** Small files (< 1 MiB) per `bytes`. */
  smallFiles: 2900,
};

export interface CorpusFile {
  /** Path in the archive. */
  path: string;
  size: number;
  /** Where the bytes come from: one real file, or several concatenated. */
  sources: string[];
}

export interface Corpus {
  /** Unique name, also the S3 key stem. */
  id: string;
  /** Name in the report: "stack", "stack (stored)", "1 GiB", "PyPI stack". */
  label: string;
  /** stack and series: built from this machine's files (this file); pypi: bench/pypi-corpus.ts. */
  kind: 'stack' | 'series' | 'pypi';
  method: 'deflate' | 'store';
  zipPath: string;
  zipBytes: number;
  files: number;
  unpackedBytes: number;
  largest: number[];
  bigFiles: { path: string; size: number; concatenated: boolean }[];
  mediumFiles: number;
  smallFiles: number;
  buildSeconds: number;
  zipSeconds: number;
}

interface Pools {
  big: { path: string; size: number }[];
  medium: { path: string; size: number }[];
  smallLibs: { path: string; size: number }[];
  python: { path: string; size: number; root: string }[];
  libDir: string;
}

const SO_NAME = /\.so(\.\d+)*$/;

function walk(dir: string, out: { path: string; size: number }[], seen: Set<string>): void {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return;
  }
  for (const name of names) {
    const p = join(dir, name);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) walk(p, out, seen);
    else if (st.isFile() && st.size > 0) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ path: p, size: st.size });
    }
  }
}

function multiarchDir(): string {
  const triplet = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  for (const d of [`/usr/lib/${triplet}`, `/lib/${triplet}`, '/usr/lib64', '/usr/lib']) if (existsSync(d)) return d;
  throw new Error('no system library directory found');
}

function pythonRoots(): string[] {
  const roots = ['/usr/lib/python3/dist-packages'];
  for (const name of readdirSync('/usr/lib').sort()) if (/^python3\.\d+$/.test(name)) roots.push(join('/usr/lib', name));
  return roots.filter((r) => existsSync(r));
}

let pools: Pools | null = null;

function loadPools(): Pools {
  if (pools) return pools;
  const libDir = multiarchDir();
  const libs: { path: string; size: number }[] = [];
  walk(libDir, libs, new Set());
  const shared = libs.filter((f) => SO_NAME.test(f.path));
  const python: Pools['python'] = [];
  const seen = new Set<string>();
  for (const root of pythonRoots()) {
    const found: { path: string; size: number }[] = [];
    walk(root, found, seen);
    for (const f of found) if (f.size < SMALL_LIMIT) python.push({ ...f, root });
  }
  pools = {
    libDir,
    big: shared.filter((f) => f.size > BIG_MIN).sort((a, b) => b.size - a.size || a.path.localeCompare(b.path)),
    medium: shared.filter((f) => f.size >= SMALL_LIMIT && f.size <= BIG_MIN),
    smallLibs: shared.filter((f) => f.size < SMALL_LIMIT),
    python,
  };
  if (pools.medium.length === 0 || pools.smallLibs.length === 0 || pools.python.length === 0) {
    throw new Error(`not enough material: ${pools.medium.length} shared libraries of 1-100 MiB and ${pools.smallLibs.length} under 1 MiB in ${libDir}, ` +
      `${pools.python.length} Python files (install python3 and python3-numpy: make system-deps)`);
  }
  return pools;
}

const stableOrder = (p: string): string => createHash('sha1').update(p).digest('hex');

/** What goes into a corpus of `bytes` unpacked: deterministic for a given machine. */
export function planCorpus(bytes: number): CorpusFile[] {
  const p = loadPools();
  const scale = bytes / STACK_SHAPE.bytes;
  const files: CorpusFile[] = [];
  const taken = new Set<string>();
  const add = (path: string, size: number, sources: string[]) => {
    let unique = path;
    for (let k = 2; taken.has(unique); k++) unique = `copy${k}/${path}`;
    taken.add(unique);
    files.push({ path: unique, size, sources });
  };

  // Small files: spread evenly over the Python files and the small shared libraries; when a
  // corpus needs more than there are, the pool is used again under copyN/.
  const smallPool = [
    ...p.python.map((f) => ({ ...f, arc: f.root.endsWith('dist-packages') ? relative(f.root, f.path) : join(basename(f.root), relative(f.root, f.path)) })),
    ...p.smallLibs.map((f) => ({ ...f, arc: join('libs', relative(p.libDir, f.path)) })),
  ];
  const nSmall = Math.max(1, Math.round(STACK_SHAPE.smallFiles * scale));
  for (let i = 0; i < nSmall; i++) {
    const f = smallPool[nSmall <= smallPool.length ? Math.floor((i * smallPool.length) / nSmall) : i % smallPool.length];
    add(f.arc, f.size, [f.path]);
  }
  const smallBytes = files.reduce((s, f) => s + f.size, 0);

  // Big files: the system's own files over 100 MB while they fit the share, the rest built by
  // concatenating real shared libraries (each big file starts at a different library).
  const bigTarget = STACK_SHAPE.bigShare * bytes;
  const nBig = Math.max(1, Math.round(bigTarget / STACK_SHAPE.bigTypical));
  const concatPool = [...p.medium, ...p.big].sort((a, b) => stableOrder(a.path).localeCompare(stableOrder(b.path)));
  let bigBytes = 0;
  let realUsed = 0;
  for (let i = 0; i < nBig; i++) {
    const share = (bigTarget - bigBytes) / (nBig - i);
    const real = p.big[realUsed];
    if (real && real.size <= share * 1.25) {
      realUsed++;
      add(join('mlstack', 'lib', real.path.split('/').pop()!), real.size, [real.path]);
      bigBytes += real.size;
      continue;
    }
    const size = Math.round(share);
    const sources: string[] = [];
    let got = 0;
    for (let k = (i * 7) % concatPool.length; got < size; k = (k + 1) % concatPool.length) {
      sources.push(concatPool[k].path);
      got += concatPool[k].size;
    }
    add(join('mlstack', 'lib', `libmlstack_part${i + 1}.so`), size, sources);
    bigBytes += size;
  }

  // Medium files (1-100 MB): real shared libraries in a fixed pseudo-random order, until the
  // corpus reaches its size.
  const mediumPool = [...p.medium].sort((a, b) => stableOrder(a.path).localeCompare(stableOrder(b.path)));
  let rest = bytes - smallBytes - bigBytes;
  for (let k = 0; rest > SMALL_LIMIT; k++) {
    const f = mediumPool[k % mediumPool.length];
    const size = Math.min(f.size, rest);
    if (size < SMALL_LIMIT) break;
    add(join('mlstack', 'lib', relative(p.libDir, f.path)), size, [f.path]);
    rest -= size;
  }
  return files;
}

/** Writes `size` bytes of the sources, one after another, to `out`. */
function writeConcatenated(out: string, sources: string[], size: number): void {
  const fd = openSync(out, 'w');
  const buf = Buffer.allocUnsafe(8 * MiB);
  let left = size;
  try {
    for (const src of sources) {
      if (left === 0) break;
      const inFd = openSync(src, 'r');
      try {
        for (;;) {
          const n = readSync(inFd, buf, 0, Math.min(buf.length, left), null);
          if (n === 0) break;
          writeSync(fd, buf, 0, n);
          left -= n;
          if (left === 0) break;
        }
      } finally {
        closeSync(inFd);
      }
    }
  } finally {
    closeSync(fd);
  }
  if (left !== 0) throw new Error(`${out}: ran out of source bytes (${left} short)`);
}

function materialise(dir: string, files: CorpusFile[]): void {
  rmSync(dir, { recursive: true, force: true });
  for (const f of files) {
    const out = join(dir, f.path);
    mkdirSync(dirname(out), { recursive: true });
    if (f.sources.length === 1 && statSync(f.sources[0]).size === f.size) copyFileSync(f.sources[0], out);
    else writeConcatenated(out, f.sources, f.size);
  }
}

/** Info-ZIP zip, as users build their archives: deflate level 6 (its default) or stored (-0). */
export function zipTree(dir: string, out: string, method: 'deflate' | 'store'): void {
  rmSync(out, { force: true });
  const tmp = `${out}.partial`;
  rmSync(tmp, { force: true });
  execFileSync('zip', ['-q', '-r', '-X', ...(method === 'store' ? ['-0'] : []), tmp, '.'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  renameSync(tmp, out);
}

export interface CorpusRequest {
  id: string;
  label: string;
  kind: 'stack' | 'series';
  bytes: number;
  methods: ('deflate' | 'store')[];
}

/** Builds (or finds in the cache) the archives of one request: one per method, same files. */
export function ensureCorpora(cacheDir: string, req: CorpusRequest, say: (s: string) => void): Corpus[] {
  const dir = join(cacheDir, `corpora-v${RECIPE_VERSION}`);
  mkdirSync(dir, { recursive: true });
  const out: Corpus[] = [];
  const missing = req.methods.filter((m) => !existsSync(join(dir, `${req.id}-${m}.json`)));
  let tree = '';
  let files: CorpusFile[] = [];
  if (missing.length > 0) {
    const t0 = performance.now();
    files = planCorpus(req.bytes);
    tree = join(dir, `${req.id}.tree`);
    say(`building corpus ${req.label}: ${files.length} files, ${(files.reduce((s, f) => s + f.size, 0) / MiB).toFixed(0)} MiB (once; cached in ${dir})`);
    materialise(tree, files);
    for (const m of missing) {
      const zipPath = join(dir, `${req.id}-${m}.zip`);
      const z0 = performance.now();
      zipTree(tree, zipPath, m);
      const big = files.filter((f) => f.size > BIG_MIN);
      const corpus: Corpus = {
        id: `${req.id}-${m}`,
        label: m === 'store' ? `${req.label} (stored)` : req.label,
        kind: req.kind,
        method: m,
        zipPath,
        zipBytes: statSync(zipPath).size,
        files: files.length,
        unpackedBytes: files.reduce((s, f) => s + f.size, 0),
        largest: files.map((f) => f.size).sort((a, b) => b - a).slice(0, 5),
        bigFiles: big.map((f) => ({ path: f.path, size: f.size, concatenated: f.sources.length > 1 })),
        mediumFiles: files.filter((f) => f.size >= SMALL_LIMIT && f.size <= BIG_MIN).length,
        smallFiles: files.filter((f) => f.size < SMALL_LIMIT).length,
        buildSeconds: Math.round((performance.now() - t0) / 100) / 10,
        zipSeconds: Math.round((performance.now() - z0) / 100) / 10,
      };
      writeFileSync(join(dir, `${req.id}-${m}.json`), `${JSON.stringify(corpus, null, 2)}\n`);
      say(`  ${corpus.label}: ${(corpus.zipBytes / MiB).toFixed(0)} MiB zip (${m})`);
    }
    rmSync(tree, { recursive: true, force: true });
  }
  for (const m of req.methods) {
    const meta = JSON.parse(readFileSync(join(dir, `${req.id}-${m}.json`), 'utf8')) as Corpus;
    if (!existsSync(meta.zipPath) || statSync(meta.zipPath).size !== meta.zipBytes) {
      rmSync(join(dir, `${req.id}-${m}.json`), { force: true });
      return ensureCorpora(cacheDir, req, say);
    }
    out.push(meta);
  }
  return out;
}

/** A zip with no entries: the end-of-central-directory record alone. */
export function emptyZip(): Buffer {
  const b = Buffer.alloc(22);
  b.writeUInt32LE(0x06054b50, 0);
  return b;
}
