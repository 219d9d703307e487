/**
 * Use recording in the LD_PRELOAD library (preload-c/trace.c), for `snaploader trace`: the
 * test probe (test/fixtures/preload/probe.c) opens and loads files of a tree through the real
 * library with SNAPLOADER_TRACE set, and the tests read the file it appended to.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeMappingFile, RecordKind } from '../src/mapping-file';
import { PRELOAD as BUILT_PRELOAD, requireBuilt, ROOT } from './support/paths';
import { zigCc } from './support/zig';

const PRELOAD = process.env.SNAPLOADER_TEST_PRELOAD ?? BUILT_PRELOAD;
const FIXTURES = join(ROOT, 'test', 'fixtures', 'preload');
const OPENERS = ['open', 'open64', 'openat', 'openat64', '__open_2', '__open64_2', '__openat_2', '__openat64_2', 'fopen', 'fopen64', 'freopen', 'freopen64'];

let work: string;
let probe: string;
let tree: string;
let map: string;
const orig = `/var/task/snaploader-trace-test-${process.pid}`;
let n = 0;

beforeAll(() => {
  requireBuilt();
  work = mkdtempSync(join(tmpdir(), 'snaploader-trace-'));
  probe = zigCc(join(work, 'probe'), ['-rdynamic', join(FIXTURES, 'probe.c'), '-ldl', '-lpthread']);
  tree = join(work, 'tree');
  mkdirSync(join(tree, 'pkg'), { recursive: true });
  mkdirSync(join(tree, '.snaploader'));
  writeFileSync(join(tree, 'pkg', 'data.txt'), 'data');
  writeFileSync(join(tree, 'pkg', 'other.txt'), 'other');
  writeFileSync(join(tree, 'name with space%.txt'), 'odd');
  writeFileSync(join(work, 'outside.txt'), 'outside');
  zigCc(join(tree, 'pkg', 'libfix.so'), ['-shared', '-fPIC', '-DANSWER=42', join(FIXTURES, 'fixlib.c')]);
  map = join(tree, '.snaploader', 'map');
  const rec = (key: string, value: string) => ({ kind: RecordKind.Path, key: Buffer.from(key), value: Buffer.from(value) });
  writeFileSync(map, encodeMappingFile([
    rec(`${orig}/pkg/data.txt`, join(tree, 'pkg', 'data.txt')),
    rec(`${orig}/pkg/libfix.so`, join(tree, 'pkg', 'libfix.so')),
  ]));
});
afterAll(() => work && rmSync(work, { recursive: true, force: true }));

function probeRun(args: string[], env: Record<string, string>) {
  const r = spawnSync(probe, args, {
    cwd: work, encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LD_PRELOAD: PRELOAD, SNAPLOADER_MAP: map, ...env },
  });
  if (r.error) throw r.error;
  return r;
}

/** A fresh trace file path and a run that records into it; returns the probe's output and the lines. */
function traced(args: string[], env: Record<string, string> = {}): { out: string; err: string; lines: string[]; file: string } {
  const file = join(work, `trace-${++n}.log`);
  const r = probeRun(args, { SNAPLOADER_TRACE: file, ...env });
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  return { out: r.stdout, err: r.stderr, lines: text === '' ? [] : text.replace(/\n$/, '').split('\n'), file };
}

describe('SNAPLOADER_TRACE', () => {
  test.each(OPENERS)('%s of a mapped path records the tree file, relative to the tree, and returns what it returns untraced', (fn) => {
    const t = traced([fn, `${orig}/pkg/data.txt`]);
    expect(t.out).toMatch(/^ok errno=77 /);
    expect(t.out).toBe(probeRun([fn, `${orig}/pkg/data.txt`], {}).stdout);
    expect(t.lines).toEqual(['pkg/data.txt']);
  });

  test('a tree path opened directly (as Python imports do) is recorded; a file outside the tree and the mapping file are not', () => {
    expect(traced(['open', join(tree, 'pkg', 'other.txt')]).lines).toEqual(['pkg/other.txt']);
    expect(traced(['open', join(work, 'outside.txt')]).lines).toEqual([]);
    expect(traced(['open', map]).lines).toEqual([]);
    // Relative to the cwd, with dot segments: normalised before the tree is compared.
    expect(traced(['open', 'tree/pkg/../pkg/./other.txt']).lines).toEqual(['pkg/other.txt']);
  });

  test('a name with spaces and % is percent-encoded, one line per file', () => {
    expect(traced(['fopen', join(tree, 'name with space%.txt')]).lines).toEqual(['name%20with%20space%25.txt']);
  });

  test('records the first use once, however many threads open the files how many times', () => {
    const t = traced(['threads', '4', '200', join(tree, 'pkg', 'data.txt'), 'data', `${orig}/pkg/data.txt`, 'data']);
    expect(t.lines).toEqual(['pkg/data.txt']);
  });

  test('a failed open records nothing and leaves errno as the call set it', () => {
    const missing = join(tree, 'pkg', 'missing.txt');
    const t = traced(['open', missing]);
    expect(t.out).toBe('fail errno=2\n');
    expect(t.lines).toEqual([]);
  });

  test('dlopen of a mapped path records the library it loaded', () => {
    const t = traced(['dlopen', `${orig}/pkg/libfix.so`]);
    expect(t.out).toMatch(/^ok answer=42/);
    expect(t.lines).toEqual(['pkg/libfix.so']);
  });

  test('dlopen of a tree path itself (a library loading its neighbour by full path) records it', () => {
    const t = traced(['dlopen', join(tree, 'pkg', 'libfix.so')]);
    expect(t.out).toMatch(/^ok answer=42/);
    expect(t.lines).toEqual(['pkg/libfix.so']);
  });

  test('appends (O_APPEND) to what the file holds, and children made every way add whole lines of their own', () => {
    const file = join(work, 'appended.log');
    writeFileSync(file, 'earlier\n');
    const r = probeRun(['children', `${orig}/pkg/data.txt`, 'data'], { SNAPLOADER_TRACE: file });
    expect(r.stdout).not.toMatch(/wrong/);
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines[0]).toBe('earlier');
    expect(lines[lines.length - 1]).toBe('');
    const rest = lines.slice(1, -1);
    expect(rest.length).toBeGreaterThan(1);
    expect(new Set(rest)).toEqual(new Set(['pkg/data.txt']));
  });

  test('is off by default: unset or blank, no file is written and the call is unchanged', () => {
    const plain = probeRun(['open', join(tree, 'pkg', 'data.txt')], {});
    expect(plain.stdout).toMatch(/^ok errno=77 /);
    expect(probeRun(['open', join(tree, 'pkg', 'data.txt')], { SNAPLOADER_TRACE: ' ' }).stdout).toBe(plain.stdout);
  });

  test('a trace file that cannot be opened says so once on stderr, and the call still succeeds', () => {
    const t = traced(['open', join(tree, 'pkg', 'data.txt')], { SNAPLOADER_TRACE: join(work, 'no-such-dir', 'trace.log') });
    expect(t.out).toMatch(/^ok errno=77 /);
    expect(t.err).toBe(`snaploader: trace: cannot open SNAPLOADER_TRACE=${join(work, 'no-such-dir', 'trace.log')}: No such file or directory; nothing is recorded\n`);
  });
});
