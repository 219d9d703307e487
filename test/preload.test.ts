/**
 * The LD_PRELOAD library (preload-c/snaploader_preload.c), run for real: a small C probe
 * (test/fixtures/preload/probe.c) calls exactly one interposed function and prints what
 * happened, and the tests compare a run through the library with a run without it.
 * Assumes `make build` ran (the library is not built here).
 */
import { execFileSync, spawnSync, SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { openSync, closeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMappingFile, encodeMappingFile, MapRecord, RecordKind } from '../src/mapping-file';
import { PRELOAD as BUILT_PRELOAD, ROOT } from './support/paths';
import { zigCc } from './support/zig';

// SNAPLOADER_TEST_PRELOAD runs the suite against another build of the library (e.g. a mutant).
const PRELOAD = process.env.SNAPLOADER_TEST_PRELOAD ?? BUILT_PRELOAD;
const FIXTURES = join(ROOT, 'test', 'fixtures', 'preload');
const CONTENT = 'hello from the tree';
const UNMAPPED_CONTENT = 'an ordinary file';

/** Every function the library interposes that takes a path and returns an fd or a FILE. */
const OPENERS = [
  'open', 'open64', 'openat', 'openat64', '__open_2', '__open64_2', '__openat_2', '__openat64_2',
  'fopen', 'fopen64', 'freopen', 'freopen64',
] as const;
const AT_FUNCTIONS = OPENERS.filter((f) => f.includes('openat'));

let work: string;
let probe: string;
/** The probe whose getenv and malloc call open() (see PROBE_REENTER in probe.c). */
let probeReenter: string;
let tree: string;
/** The original location, "/var/task"-like: it must not exist on this machine. */
let orig: string;
/** A real, empty directory used as base path for relative-path tests (the test's cwd). */
let base: string;
let mapFile: string;
let unmapped: string;
let searchDir: string;
let mappingCount: number;

interface RunOptions {
  preload?: boolean;
  map?: string;
  debug?: string;
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k === 'LD_PRELOAD' || k === 'LD_LIBRARY_PATH' || k.startsWith('SNAPLOADER_')) continue;
    env[k] = v;
  }
  return env;
}

function run(cmd: string, args: string[], opts: RunOptions = {}): SpawnSyncReturns<string> {
  const env = cleanEnv();
  if (opts.preload ?? true) {
    env.LD_PRELOAD = PRELOAD;
    env.SNAPLOADER_MAP = opts.map ?? mapFile;
  }
  if (opts.debug !== undefined) env.SNAPLOADER_DEBUG = opts.debug;
  Object.assign(env, opts.env ?? {});
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? work, env, encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000 });
  if (r.error) throw r.error;
  return r;
}

/** Runs the probe; returns its output line(s), failing loudly if it crashed unexpectedly. */
function probeOut(args: string[], opts: RunOptions = {}): string {
  const r = run(probe, args, opts);
  if (r.status !== 0) {
    throw new Error(`probe ${args.join(' ')} exited ${r.status} (signal ${r.signal}):\n${r.stdout}${r.stderr}`);
  }
  return r.stdout;
}

function withLib(args: string[], opts: RunOptions = {}): string {
  return probeOut(args, { ...opts, preload: true });
}

function withoutLib(args: string[], opts: RunOptions = {}): string {
  return probeOut(args, { ...opts, preload: false });
}

/** The probe's line for a successful open that read `content` and left errno alone. */
const ok = (content: string) => expect.stringMatching(new RegExp(`^ok errno=77 mode=\\d+ content=\\[${content}\\]\\n$`));

function rec(kind: RecordKind, key: string, value: string): MapRecord {
  return { kind, key: Buffer.from(key), value: Buffer.from(value) };
}

beforeAll(() => {
  if (!existsSync(PRELOAD)) {
    throw new Error(`${PRELOAD} is missing: run \`make build\` first (make test does)`);
  }
  work = mkdtempSync(join(tmpdir(), 'snaploader-preload-'));
  orig = `/var/task/snaploader-preload-test-${process.pid}-${Date.now()}`;
  if (existsSync(orig)) throw new Error(`${orig} exists; the tests need a path that does not`);

  probe = zigCc(join(work, 'bin', 'probe'), ['-rdynamic', join(FIXTURES, 'probe.c'), '-ldl', '-lpthread']);
  probeReenter = zigCc(join(work, 'bin', 'probe-reenter'), [
    '-rdynamic', '-DPROBE_REENTER', join(FIXTURES, 'probe.c'), '-ldl', '-lpthread',
  ]);
  const fixlib = (out: string, answer: number) =>
    zigCc(out, ['-shared', '-fPIC', `-DANSWER=${answer}`, join(FIXTURES, 'fixlib.c')]);

  tree = join(work, 'tree');
  mkdirSync(join(tree, 'sub'), { recursive: true });
  writeFileSync(join(tree, 'data.txt'), CONTENT);
  writeFileSync(join(tree, 'rel.txt'), 'relative content');
  // Like the memfd entries, a tree entry may be a symlink.
  writeFileSync(join(tree, 'sub', 'target.txt'), 'through a symlink');
  symlinkSync(join(tree, 'sub', 'target.txt'), join(tree, 'link.txt'));
  fixlib(join(tree, 'libfix.so'), 42);
  copyFileSync(join(tree, 'libfix.so'), join(tree, 'libsnapfix.so'));
  fixlib(join(tree, 'libshadowed.so'), 7);
  searchDir = join(work, 'search');
  fixlib(join(searchDir, 'libshadowed.so'), 42);

  base = join(work, 'base');
  mkdirSync(base);
  unmapped = join(work, 'unmapped.txt');
  writeFileSync(unmapped, UNMAPPED_CONTENT);

  const records = [
    rec(RecordKind.Path, `${orig}/lib/data.txt`, join(tree, 'data.txt')),
    rec(RecordKind.Path, `${orig}/lib/link.txt`, join(tree, 'link.txt')),
    rec(RecordKind.Path, `${orig}/lib/libfix.so`, join(tree, 'libfix.so')),
    rec(RecordKind.Path, `${base}/sub/rel.txt`, join(tree, 'rel.txt')),
    rec(RecordKind.Path, `${base}/sub/libfix.so`, join(tree, 'libfix.so')),
    rec(RecordKind.DlopenBasename, 'libsnapfix.so', join(tree, 'libsnapfix.so')),
    rec(RecordKind.DlopenBasename, 'libshadowed.so', join(tree, 'libshadowed.so')),
    rec(RecordKind.DlopenBasename, 'libbroken.so', join(tree, 'no-such-library.so')),
  ];
  mappingCount = records.length;
  // Kinds the library does not use (and one nobody knows) must be skipped, not rejected.
  records.push(rec(RecordKind.Memfd, join(tree, 'data.txt'), '3'));
  records.push(rec(RecordKind.PythonPath, '', tree));
  records.push(rec(9 as RecordKind, `${orig}/lib/unmapped-kind.txt`, unmapped));
  mapFile = join(work, 'map');
  writeFileSync(mapFile, encodeMappingFile(records));
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('redirection of mapped paths', () => {
  test.each(OPENERS)('%s on a mapped path reads the tree file, exactly as %s on the tree path does', (fn) => {
    const direct = withoutLib([fn, join(tree, 'data.txt')]);
    expect(direct).toEqual(ok(CONTENT));
    expect(withLib([fn, `${orig}/lib/data.txt`])).toBe(direct);
  });

  test.each(OPENERS)('%s on the original path fails with ENOENT without the library', (fn) => {
    expect(withoutLib([fn, `${orig}/lib/data.txt`])).toBe('fail errno=2\n');
  });

  test.each(AT_FUNCTIONS)('%s with a real directory fd and an absolute mapped path is redirected', (fn) => {
    expect(withLib([fn, `${orig}/lib/data.txt`, `dirfd=${base}`])).toEqual(ok(CONTENT));
  });

  test('a tree entry that is a symlink is followed', () => {
    expect(withLib(['open', `${orig}/lib/link.txt`])).toEqual(ok('through a symlink'));
  });

  test('a record of a kind the library does not use redirects nothing', () => {
    expect(withLib(['open', `${orig}/lib/unmapped-kind.txt`])).toBe('fail errno=2\n');
  });
});

describe('path handling', () => {
  test.each([
    ['..', '/lib/sub/../data.txt'],
    ['.. out of a missing directory', '/other/dir/../../lib/data.txt'],
    ['//', '//lib///data.txt'],
    ['/./', '/./lib/./data.txt'],
  ])('textual normalisation of %s', (_what, suffix) => {
    const path = `${orig}${suffix}`;
    expect(withoutLib(['open', path])).toBe('fail errno=2\n');
    expect(withLib(['open', path])).toEqual(ok(CONTENT));
    expect(withLib(['fopen', path])).toEqual(ok(CONTENT));
  });

  test('.. above the root stays at the root', () => {
    expect(withLib(['open', `/../..${orig}/lib/data.txt`])).toEqual(ok(CONTENT));
  });

  test.each([`${orig}/lib/data.txt/`, `${orig}/lib/data.txt/.`, `${orig}/lib/data.txt/..`])(
    'a path naming a directory (%s) is not redirected',
    (path) => {
      expect(withLib(['open', path])).toBe(withoutLib(['open', path]));
    },
  );

  test.each(['open', 'open64', '__open_2', 'fopen', 'fopen64', 'freopen', 'openat', '__openat64_2'])(
    '%s of a relative path is resolved against the working directory',
    (fn) => {
      expect(withoutLib([fn, 'sub/rel.txt'], { cwd: base })).toBe('fail errno=2\n');
      expect(withLib([fn, 'sub/rel.txt'], { cwd: base })).toEqual(ok('relative content'));
      expect(withLib([fn, './sub/../sub/rel.txt'], { cwd: base })).toEqual(ok('relative content'));
    },
  );

  test('a bare relative name is resolved against the working directory', () => {
    mkdirSync(join(base, 'sub'), { recursive: true });
    try {
      expect(withLib(['open', 'rel.txt'], { cwd: join(base, 'sub') })).toEqual(ok('relative content'));
    } finally {
      rmSync(join(base, 'sub'), { recursive: true });
    }
  });

  test.each(AT_FUNCTIONS)('%s with a real directory fd and a relative path is passed through', (fn) => {
    // cwd/sub/rel.txt is mapped; dirfd/sub/rel.txt is not, and is what the call means.
    const args = [fn, 'sub/rel.txt', `dirfd=${work}`];
    expect(withLib(args, { cwd: base })).toBe('fail errno=2\n');
    expect(withLib(args, { cwd: base })).toBe(withoutLib(args, { cwd: base }));
  });

  test('a path longer than PATH_MAX is passed through', () => {
    // Normalises to a mapped key, but the kernel would refuse the path itself.
    const path = `${orig}/lib${'/.'.repeat(2100)}/data.txt`;
    expect(withoutLib(['open', path])).toBe('fail errno=36\n'); // ENAMETOOLONG
    expect(withLib(['open', path])).toBe('fail errno=36\n');
  });
});

describe('the pre-filter that turns unmapped paths away before any lookup', () => {
  // Component lengths on both sides of the 8-byte words the filter scans and hashes by.
  const LENGTHS = [1, 3, 4, 7, 8, 9, 15, 16, 17, 24, 33];
  const parent = (n: number) => 'p'.repeat(n);
  const leaf = (n: number) => 'l'.repeat(n);
  let map: string;
  let near: string;
  beforeAll(() => {
    map = join(work, 'prefilter-map');
    writeFileSync(map, encodeMappingFile([
      ...LENGTHS.map((n) => rec(RecordKind.Path, `${orig}/pf/${parent(n)}/${leaf(n)}`, join(tree, 'data.txt'))),
      rec(RecordKind.Path, `${orig}/lib/data.txt`, join(tree, 'data.txt')),
    ]));
    near = join(work, 'near');
  });

  test.each(LENGTHS)('a mapped path whose last two components are %i bytes each is redirected, in every spelling', (n) => {
    const p = `${orig}/pf/${parent(n)}`;
    const spellings = [`${p}/${leaf(n)}`, `${p}/./${leaf(n)}`, `${p}//${leaf(n)}`, `${orig}/pf/x/../${parent(n)}/${leaf(n)}`, `/${p}/${leaf(n)}`];
    for (const path of spellings) {
      expect([path, withLib(['open', path], { map })]).toEqual([path, ok(CONTENT)]);
    }
    expect(withoutLib(['open', spellings[0]])).toBe('fail errno=2\n');
  });

  test('an unmapped file whose last components, or their lengths, equal a mapped path\'s opens itself', () => {
    // The same parent/leaf as a key (the whole filter lets it through), the same lengths with
    // other bytes (turned away by the hash), a tail or a leaf length that no key has: each
    // stops at a different step, or at none, and must still open the file itself.
    const rels = [
      'lib/data.txt', 'lib/datb.txt', 'xyz/data.txt', `${parent(8)}/${leaf(8)}`,
      'lib/data.txtx', `${parent(9)}/${leaf(8)}`, 'lib/da',
    ];
    rels.forEach((rel, i) => {
      mkdirSync(join(near, rel, '..'), { recursive: true });
      writeFileSync(join(near, rel), `near ${i}`);
    });
    rels.forEach((rel, i) => {
      for (const m of [map, mapFile]) {
        expect([rel, withLib(['open', join(near, rel)], { map: m })]).toEqual([rel, ok(`near ${i}`)]);
        expect([rel, withLib(['fopen', rel], { map: m, cwd: near })]).toEqual([rel, ok(`near ${i}`)]);
      }
    });
    expect(withLib(['open', 'data.txt'], { map, cwd: join(near, 'lib') })).toEqual(ok('near 0'));
    expect(withLib(['open', leaf(8), 'flags=RDONLY'], { map, cwd: join(near, parent(8)) })).toEqual(ok('near 3'));
  });
});

describe('unmapped paths behave exactly as without the library', () => {
  let dir: string;
  beforeAll(() => {
    dir = join(work, 'cases');
    mkdirSync(dir);
    writeFileSync(join(dir, 'file'), 'x');
    symlinkSync(unmapped, join(dir, 'link'));
  });

  const cases: [string, () => string[]][] = [
    ['a readable file', () => [unmapped]],
    ['a missing file (ENOENT)', () => [join(dir, 'missing')]],
    ['a path through a regular file (ENOTDIR)', () => [join(dir, 'file', 'child')]],
    ['a directory opened for writing (EISDIR)', () => [dir, 'flags=WRONLY']],
    ['a symlink with O_NOFOLLOW (ELOOP)', () => [join(dir, 'link'), 'flags=RDONLY|NOFOLLOW']],
    ['an existing file with O_CREAT|O_EXCL (EEXIST)', () => [unmapped, 'flags=CREAT|EXCL|WRONLY', 'mode=0600']],
    ['the empty path', () => ['']],
    ['a NULL path (EFAULT)', () => ['NULL']],
  ];
  const fns = ['open', 'open64', 'openat', 'openat64', '__openat_2', 'fopen', 'fopen64'];
  for (const [what, args] of cases) {
    // The FORTIFY variants abort on O_CREAT by design (tested below).
    const applicable = what.includes('O_CREAT') ? fns.filter((f) => !f.startsWith('__')) : fns;
    test.each(applicable)(`%s of ${what}`, (fn) => {
      const a = [fn, ...args()];
      if (fn.startsWith('f')) {
        // fopen has no flags: reuse the O_ flags as a mode string.
        const i = a.findIndex((x) => x.startsWith('flags='));
        if (i >= 0) a.splice(i, 1, a[i].includes('EXCL') ? 'fmode=wx' : a[i].includes('WRONLY') ? 'fmode=w' : 'fmode=r');
        const j = a.findIndex((x) => x.startsWith('mode='));
        if (j >= 0) a.splice(j, 1);
      }
      const without = withoutLib(a);
      expect(withLib(a)).toBe(without);
      expect(withLib(a, { debug: '1' })).toBe(without);
    });
  }

  test.each(['freopen', '__open_2', '__open64_2'])('%s of a readable and a missing file', (fn) => {
    for (const path of [unmapped, join(dir, 'missing')]) {
      expect(withLib([fn, path])).toBe(withoutLib([fn, path]));
    }
  });

  test('the FORTIFY __open_2 still aborts on O_CREAT without a mode (the real one runs)', () => {
    const args = ['__open_2', join(dir, 'fortify-created'), 'flags=CREAT|WRONLY'];
    const without = run(probe, args, { preload: false });
    const withIt = run(probe, args);
    expect(without.signal).toBe('SIGABRT');
    expect(withIt.signal).toBe('SIGABRT');
    expect(withIt.stderr).toBe(without.stderr);
  });

  test('dlopen(NULL) returns the main program', () => {
    expect(withLib(['dlopen', 'NULL'])).toBe('ok answer=none main=1\n');
    expect(withLib(['dlopen', 'NULL'])).toBe(withoutLib(['dlopen', 'NULL']));
  });
});

describe('file creation through the hooks honours the mode argument', () => {
  test.each(['open', 'open64', 'openat', 'openat64'])('%s with O_CREAT', (fn) => {
    const path = join(work, `created-${fn}`);
    expect(withLib([fn, path, 'flags=CREAT|WRONLY|EXCL', 'mode=0640', 'umask0'])).toBe(
      'ok errno=77 mode=0640 content=[]\n',
    );
    expect(statSync(path).mode & 0o7777).toBe(0o640);
  });

  test.each(['open', 'open64', 'openat', 'openat64'])('%s with O_TMPFILE (a multi-bit flag)', (fn) => {
    expect(withLib([fn, work, 'flags=TMPFILE|RDWR', 'mode=0604', 'umask0'])).toBe(
      'ok errno=77 mode=0604 content=[]\n',
    );
    expect(withLib([fn, work, 'flags=TMPFILE|RDWR', 'mode=0460', 'umask0'])).toBe(
      withoutLib([fn, work, 'flags=TMPFILE|RDWR', 'mode=0460', 'umask0']),
    );
  });
});

describe('dlopen', () => {
  test('of a mapped absolute path loads the tree library', () => {
    expect(withoutLib(['dlopen', `${orig}/lib/libfix.so`])).toMatch(/^fail dlerror=.*No such file/);
    expect(withLib(['dlopen', `${orig}/lib/libfix.so`])).toBe('ok answer=42 main=0\n');
    expect(withLib(['dlopen', `${orig}/lib/../lib/libfix.so`])).toBe('ok answer=42 main=0\n');
  });

  test('of a mapped relative path with a slash loads the tree library', () => {
    expect(withoutLib(['dlopen', './sub/libfix.so'], { cwd: base })).toMatch(/^fail dlerror=/);
    expect(withLib(['dlopen', './sub/libfix.so'], { cwd: base })).toBe('ok answer=42 main=0\n');
  });

  test('from a real interpreter (python3 ctypes) loads the tree library', () => {
    const script = `import ctypes; print(ctypes.CDLL(${JSON.stringify(`${orig}/lib/libfix.so`)}).snaploader_fixture_answer())`;
    const without = run('python3', ['-c', script], { preload: false });
    expect(without.status).not.toBe(0);
    const r = run('python3', ['-c', script]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('42\n');
    expect(r.status).toBe(0);
  });

  test('of a bare name that the normal search cannot find falls back to the basename record', () => {
    expect(withoutLib(['dlopen', 'libsnapfix.so'])).toMatch(/^fail dlerror=libsnapfix\.so: cannot open/);
    expect(withLib(['dlopen', 'libsnapfix.so'])).toBe('ok answer=42 main=0\n');
    const r = run(probe, ['dlopen', 'libsnapfix.so'], { debug: '1' });
    expect(r.stderr).toContain(`snaploader-preload: dlopen libsnapfix.so -> ${join(tree, 'libsnapfix.so')}\n`);
  });

  test('of a bare name that the normal search finds is not redirected', () => {
    const env = { LD_LIBRARY_PATH: searchDir };
    expect(withLib(['dlopen', 'libshadowed.so'], { env })).toBe('ok answer=42 main=0\n');
    // ...while the basename record is live: without the search path the tree copy (7) loads.
    expect(withLib(['dlopen', 'libshadowed.so'])).toBe('ok answer=7 main=0\n');
  });

  test('of a bare name whose tree copy also fails reports the original name in dlerror()', () => {
    const without = withoutLib(['dlopen', 'libbroken.so']);
    expect(without).toMatch(/^fail dlerror=libbroken\.so: cannot open shared object file/);
    expect(withLib(['dlopen', 'libbroken.so'])).toBe(without);
  });

  test('of an unmapped bare name or path behaves as without the library', () => {
    for (const name of ['libnot-mapped-anywhere.so', `${orig}/lib/libother.so`, 'libc.so.6']) {
      expect(withLib(['dlopen', name])).toBe(withoutLib(['dlopen', name]));
    }
  });
});

describe('malformed mapping files are ignored as a whole', () => {
  /** A valid file whose first record maps data.txt: accepting any part of it would redirect. */
  function valid(): Buffer {
    return encodeMappingFile([
      rec(RecordKind.Path, `${orig}/lib/data.txt`, join(tree, 'data.txt')),
      rec(RecordKind.Path, `${orig}/lib/second.txt`, join(tree, 'data.txt')),
    ]);
  }
  /** One raw record (lengths written as given). */
  function rawRecord(kind: number, key: Buffer, value: Buffer, keyLen = key.length, valueLen = value.length): Buffer {
    const head = Buffer.alloc(12);
    head.writeUInt8(kind, 0);
    head.writeUInt32LE(keyLen, 4);
    head.writeUInt32LE(valueLen, 8);
    return Buffer.concat([head, key, Buffer.from([0]), value, Buffer.from([0])]);
  }
  function withExtraRecord(record: Buffer): Buffer {
    const v = valid();
    v.writeUInt32LE(3, 8);
    return Buffer.concat([v, record]);
  }

  const cases: [string, () => string, RegExp][] = [
    ['a missing file', () => join(work, 'no-such-map'), /cannot open it: No such file or directory/],
    ['a directory', () => tree, /not a regular file/],
    ['an empty file', () => write('empty', Buffer.alloc(0)), /truncated header/],
    ['garbage', () => write('garbage', Buffer.from('this is not a mapping file at all\n')), /bad magic/],
    ['a wrong format version', () => write('version', (() => { const b = valid(); b[7] = 2; return b; })()), /bad magic/],
    ['a truncated file', () => write('truncated', valid().subarray(0, valid().length - 1)), /truncated in record 1/],
    ['a record count larger than the records', () => write('count', (() => { const b = valid(); b.writeUInt32LE(3, 8); return b; })()), /truncated in record 2/],
    ['trailing bytes', () => write('trailing', Buffer.concat([valid(), Buffer.from([0])])), /trailing bytes/],
    ['a key longer than 4096 bytes', () => write('long-key', withExtraRecord(rawRecord(1, Buffer.alloc(4097, 'a'), Buffer.from('/x')))), /longer than 4096 bytes in record 2/],
    ['a value length of 2^32-1', () => write('huge-len', withExtraRecord(rawRecord(1, Buffer.from('/k'), Buffer.from('/v'), 2, 0xffffffff))), /longer than 4096 bytes in record 2/],
    ['a NUL byte inside a key', () => write('nul', withExtraRecord(rawRecord(1, Buffer.from('/a\0b'), Buffer.from('/v')))), /NUL byte inside key or value in record 2/],
    ['a missing NUL terminator', () => write('unterminated', (() => { const r = rawRecord(2, Buffer.from('libx.so'), Buffer.from('/v')); r[12 + 7] = 0x41; return withExtraRecord(r); })()), /missing NUL terminator in record 2/],
    ['a file over 256 MiB', () => {
      const p = write('huge', valid());
      const fd = openSync(p, 'r+');
      ftruncateSync(fd, 256 * 1024 * 1024 + 1); // sparse: costs no disk
      closeSync(fd);
      return p;
    }, /larger than 256 MiB/],
  ];
  function write(name: string, data: Buffer): string {
    const p = join(work, `bad-map-${name}`);
    writeFileSync(p, data);
    return p;
  }

  test.each(cases)('%s: every call passes through, and the debug line says why', (_what, make, reason) => {
    const map = make();
    expect(withLib(['open', `${orig}/lib/data.txt`], { map })).toBe('fail errno=2\n');
    expect(withLib(['fopen', unmapped], { map })).toEqual(ok(UNMAPPED_CONTENT));
    expect(withLib(['dlopen', 'libsnapfix.so'], { map })).toMatch(/^fail dlerror=libsnapfix\.so: cannot open/);
    const quiet = run(probe, ['open', unmapped], { map });
    expect(quiet.stderr).toBe('');
    const r = run(probe, ['open', unmapped], { map, debug: '1' });
    expect(r.status).toBe(0);
    expect(r.stdout).toEqual(ok(UNMAPPED_CONTENT));
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0].startsWith(`snaploader-preload: ignoring mapping file ${map}: `)).toBe(true);
    expect(lines[0]).toMatch(reason);
  });

  test('the valid file used above is accepted (so the cases above test the defects)', () => {
    const map = write('valid', valid());
    expect(withLib(['open', `${orig}/lib/data.txt`], { map })).toEqual(ok(CONTENT));
  });

  test.each([
    ['unset', undefined],
    ['empty', ''],
  ])('SNAPLOADER_MAP %s: everything passes through silently', (_what, value) => {
    const env = cleanEnv();
    env.LD_PRELOAD = PRELOAD;
    env.SNAPLOADER_DEBUG = '1';
    if (value !== undefined) env.SNAPLOADER_MAP = value;
    const r = spawnSync(probe, ['open', `${orig}/lib/data.txt`], { env, encoding: 'utf8' });
    expect(r.stdout).toBe('fail errno=2\n');
    expect(r.stderr).toBe('');
    const r2 = spawnSync(probe, ['open', unmapped], { env, encoding: 'utf8' });
    expect(r2.stdout).toEqual(ok(UNMAPPED_CONTENT));
  });
});

describe('debug output', () => {
  test('SNAPLOADER_DEBUG=1 prints the load and each redirect, one line each', () => {
    const r = run(probe, ['open', `${orig}/lib/data.txt`], { debug: '1' });
    expect(r.stdout).toEqual(ok(CONTENT));
    expect(r.stderr).toBe(
      `snaploader-preload: loaded ${mappingCount} mappings from ${mapFile}\n` +
        `snaploader-preload: open ${orig}/lib/data.txt -> ${join(tree, 'data.txt')}\n`,
    );
  });

  test.each([undefined, '', '0', 'false'])('SNAPLOADER_DEBUG=%p prints nothing at all', (debug) => {
    for (const args of [['open', `${orig}/lib/data.txt`], ['dlopen', 'libsnapfix.so'], ['open', unmapped]]) {
      const r = run(probe, args, debug === undefined ? {} : { debug });
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
    }
    const bad = run(probe, ['open', unmapped], { map: join(work, 'no-such-map'), ...(debug === undefined ? {} : { debug }) });
    expect(bad.stderr).toBe('');
  });
});

describe('threads', () => {
  test('32 threads racing on the first call (which loads the map) all get the right files', () => {
    for (let round = 0; round < 5; round++) {
      const out = withLib(['threads', '32', '200', `${orig}/lib/data.txt`, CONTENT, unmapped, UNMAPPED_CONTENT]);
      expect(out).toBe('threads=32 calls=6400 wrong=0\n');
      const missing = withLib(['threads', '32', '50', `${orig}/lib/data.txt`, CONTENT, join(work, 'missing'), 'ENOENT']);
      expect(missing).toBe('threads=32 calls=1600 wrong=0\n');
    }
  });
});

describe('re-entrancy', () => {
  // getenv and malloc that open files (as jemalloc does while initialising) re-enter the
  // open hook from inside the library's own initialisation: the nested call must neither
  // wait on the initialisation its own thread is running (a deadlock) nor break the outer
  // call.
  test.each([
    [['open', 'ORIG/lib/data.txt'], 'ok'],
    [['fopen', 'ORIG/lib/data.txt'], 'ok'],
    [['dlopen', 'libsnapfix.so'], 'ok answer=42 main=0\n'],
    [['dlopen', 'ORIG/lib/libfix.so'], 'ok answer=42 main=0\n'],
  ])('with getenv and malloc calling open(), %p still works', (args, want) => {
    const a = args.map((x) => x.replace('ORIG', orig));
    const r = run(probeReenter, a, { timeoutMs: 10_000, debug: '1' });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    if (want === 'ok') expect(r.stdout).toEqual(ok(CONTENT));
    else expect(r.stdout).toBe(want);
    expect(r.stderr).toMatch(/^snaploader-preload: loaded \d+ mappings from /);
  });

  test('with getenv and malloc calling open(), 16 racing threads still get the right files', () => {
    const r = run(probeReenter, ['threads', '16', '100', `${orig}/lib/data.txt`, CONTENT, unmapped, UNMAPPED_CONTENT], {
      timeoutMs: 15_000,
    });
    expect(r.signal).toBeNull();
    expect(r.stdout).toBe('threads=16 calls=1600 wrong=0\n');
  });
});

describe('mapping files under stress: calls pass through, nothing crashes or hangs', () => {
  const valid = () =>
    encodeMappingFile([
      rec(RecordKind.Path, `${orig}/lib/data.txt`, join(tree, 'data.txt')),
      rec(RecordKind.DlopenBasename, 'libsnapfix.so', join(tree, 'libsnapfix.so')),
    ]);
  const file = (name: string, data: Buffer) => {
    const p = join(work, `stress-${name}`);
    writeFileSync(p, data);
    return p;
  };
  /** A sparse file of `size` bytes that starts with `head`: costs no disk. */
  const sparse = (name: string, head: Buffer, size: number) => {
    const p = file(name, head);
    const fd = openSync(p, 'r+');
    ftruncateSync(fd, size);
    closeSync(fd);
    return p;
  };
  const MiB = 1024 * 1024;

  /** Everything passes through, and the one debug line gives the reason. */
  function passesThrough(map: string, reason: RegExp): void {
    expect(withLib(['open', `${orig}/lib/data.txt`], { map, timeoutMs: 20_000 })).toBe('fail errno=2\n');
    expect(withLib(['dlopen', 'libsnapfix.so'], { map, timeoutMs: 20_000 })).toMatch(/^fail dlerror=libsnapfix\.so: cannot open/);
    const r = run(probe, ['fopen', unmapped], { map, debug: '1', timeoutMs: 20_000 });
    expect(r.signal).toBeNull();
    expect(r.stdout).toEqual(ok(UNMAPPED_CONTENT));
    expect(r.stderr).toMatch(new RegExp(`^snaploader-preload: ignoring mapping file [^\n]*: ${reason.source}[^\n]*\n$`));
  }

  test('300 MiB (over the 256 MiB limit)', () => {
    passesThrough(sparse('300m', valid(), 300 * MiB), /larger than 256 MiB/);
  });

  test('exactly 256 MiB is within the limit: read, then refused for its trailing bytes', () => {
    passesThrough(sparse('256m', valid(), 256 * MiB), /trailing bytes after the last record/);
  });

  test.each([
    ['with its two records', () => valid(), /truncated in record 2/],
    ['and no records at all', () => valid().subarray(0, 16), /truncated in record 0/],
  ])('a header claiming 2^32-1 records %s', (_what, make, reason) => {
    const b = Buffer.from(make());
    b.writeUInt32LE(0xffffffff, 8);
    passesThrough(file(`count-max-${b.length}`, b), reason);
  });

  test('a FIFO does not block the first call', () => {
    const fifo = join(work, 'stress-fifo');
    execFileSync('mkfifo', [fifo]);
    passesThrough(fifo, /not a regular file/);
  });

  test.each(['/dev/zero', '/dev/null', '/proc/self/status'])('%s', (map) => {
    // /proc files are regular but report size 0: a truncated header.
    passesThrough(map, map.startsWith('/proc') ? /truncated header/ : /not a regular file/);
  });

  test('every truncation of a valid file is ignored as a whole', () => {
    const whole = valid();
    expect(withLib(['open', `${orig}/lib/data.txt`], { map: file('whole', whole) })).toEqual(ok(CONTENT));
    for (let len = 0; len < whole.length; len++) {
      const map = file('cut', whole.subarray(0, len));
      const r = run(probe, ['open', `${orig}/lib/data.txt`], { map, debug: '1' });
      expect([len, r.signal, r.stdout]).toEqual([len, null, 'fail errno=2\n']);
      expect(r.stderr).toMatch(/^snaploader-preload: ignoring mapping file /);
    }
  });

  test('random corruptions: the library accepts exactly what the strict reader accepts, and never crashes', () => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const whole = valid();
    let accepted = 0;
    for (let i = 0; i < 250; i++) {
      const b = Buffer.from(whole);
      for (let k = 1 + rand(3); k > 0; k--) {
        const at = rand(b.length);
        // Mostly the length and count fields, where a wrong value is most dangerous.
        b[rand(4) === 0 ? at : [8, 9, 11, 20, 21, 24, 25, 27][rand(8)]] = [0, 1, 0xff, rand(256)][rand(4)];
      }
      let strict = true;
      try {
        decodeMappingFile(b);
      } catch {
        strict = false;
      }
      const map = file('random', b);
      const r = run(probe, ['open', unmapped], { map, debug: '1' });
      expect([i, r.signal, r.status, r.stdout]).toEqual([i, null, 0, ok(UNMAPPED_CONTENT)]);
      const loaded = /^snaploader-preload: loaded \d+ mappings from /.test(r.stderr);
      expect([i, b.toString('hex'), loaded]).toEqual([i, b.toString('hex'), strict]);
      if (loaded) accepted++;
    }
    expect(accepted).toBeGreaterThan(0); // some corruptions (e.g. of a path byte) keep the file valid
  });
});

describe('64 threads while a large mapping loads', () => {
  test('opening mapped, unmapped and missing paths all get the right results', () => {
    // 30,000 records (about 2.5 MB) make the load take long enough for the threads to pile up
    // behind it; the mapped path is the last record.
    const records: MapRecord[] = [];
    for (let i = 0; i < 30000; i++) {
      records.push(rec(RecordKind.Path, `${orig}/pkg${i % 97}/module_${i}.py`, join(tree, `never-${i}`)));
    }
    records.push(rec(RecordKind.Path, `${orig}/lib/data.txt`, join(tree, 'data.txt')));
    const map = join(work, 'large-map');
    writeFileSync(map, encodeMappingFile(records));
    for (let round = 0; round < 3; round++) {
      const args = ['threads', '64', '100', `${orig}/lib/data.txt`, CONTENT, unmapped, UNMAPPED_CONTENT];
      expect(withLib(args, { map })).toBe('threads=64 calls=6400 wrong=0\n');
      const missing = ['threads', '64', '50', `${orig}/lib/data.txt`, CONTENT, join(work, 'missing'), 'ENOENT'];
      expect(withLib(missing, { map })).toBe('threads=64 calls=3200 wrong=0\n');
    }
    // Without the library the mapped path is missing: the check above can fail.
    expect(withoutLib(['threads', '64', '10', `${orig}/lib/data.txt`, CONTENT, unmapped, UNMAPPED_CONTENT])).toBe(
      'threads=64 calls=640 wrong=320\n',
    );
  });
});

describe('posix_spawn file actions', () => {
  let spawnOpen: string;
  beforeAll(() => {
    spawnOpen = zigCc(join(work, 'bin', 'spawn-open'), [join(FIXTURES, 'spawn-open.c')]);
  });
  const spawned = (path: string, opts: RunOptions = {}) => {
    const r = run(spawnOpen, [path], opts);
    if (r.status !== 0) throw new Error(`spawn-open exited ${r.status}: ${r.stdout}${r.stderr}`);
    return r;
  };

  test('an addopen of a mapped path opens the tree file in the child, exactly as an addopen of the tree path does', () => {
    const direct = spawned(join(tree, 'data.txt'), { preload: false }).stdout;
    expect(direct).toBe(`${CONTENT}\nexit=0 errno=77\n`);
    expect(spawned(`${orig}/lib/data.txt`, { preload: false }).stdout).toBe('fail error=2\n');
    expect(spawned(`${orig}/lib/data.txt`).stdout).toBe(direct);
    expect(spawned(`${orig}/lib/sub/../data.txt`).stdout).toBe(direct);
  });

  test('unmapped and relative paths are passed through unchanged; a redirect is a debug line', () => {
    expect(spawned(unmapped).stdout).toBe(spawned(unmapped, { preload: false }).stdout);
    expect(spawned('sub/rel.txt', { cwd: base }).stdout).toBe('fail error=2\n');
    const r = spawned(`${orig}/lib/data.txt`, { debug: '1' });
    expect(r.stderr).toContain(`snaploader-preload: posix_spawn_file_actions_addopen ${orig}/lib/data.txt -> ${join(tree, 'data.txt')}\n`);
  });
});

describe('child processes inherit LD_PRELOAD and SNAPLOADER_MAP and keep redirecting', () => {
  const HOWS = ['fork-before-first-call', 'fork-while-threads-open', 'parent', 'fork', 'vfork-exec', 'posix_spawn', 'fork-exec-sh'];

  test('fork (also during the first load), vfork+exec, posix_spawn, a shell', () => {
    const args = ['children', `${orig}/lib/data.txt`, CONTENT];
    expect(withLib(args, { timeoutMs: 30_000 })).toBe(HOWS.map((h) => `${h} ok\n`).join(''));
    expect(withoutLib(args)).toBe(HOWS.map((h) => `${h} wrong\n`).join(''));
  });

  test('children of a Python runtime: subprocess.run of a program that opens and one that dlopens, os.fork', () => {
    const script = [
      'import os, subprocess, sys',
      'probe, path, content, lib = sys.argv[1:5]',
      'r = subprocess.run([probe, "check", path, content])',
      'print("check", r.returncode)',
      'print("cat", subprocess.run(["/bin/cat", path], capture_output=True).stdout.decode())',
      'code = "import ctypes, sys; print(ctypes.CDLL(sys.argv[1]).snaploader_fixture_answer())"',
      'print("dlopen", subprocess.run([sys.executable, "-c", code, lib], capture_output=True).stdout.decode().strip())',
      'print("sh", subprocess.run(["/bin/sh", "-c", "exec cat \\"$0\\"", path], capture_output=True).stdout.decode())',
      'pid = os.fork()',
      'if pid == 0:',
      '    os._exit(0 if open(path).read() == content else 1)',
      'print("fork", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))',
    ].join('\n');
    const args = ['-c', script, probe, `${orig}/lib/data.txt`, CONTENT, `${orig}/lib/libfix.so`];
    const r = run('python3', args, { timeoutMs: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`check 0\ncat ${CONTENT}\ndlopen 42\nsh ${CONTENT}\nfork 0\n`);
    const without = run('python3', args, { preload: false, timeoutMs: 30_000 });
    expect(without.stdout).toMatch(/^check 1\ncat \ndlopen \nsh \nfork 1\n$/);
  });
});
