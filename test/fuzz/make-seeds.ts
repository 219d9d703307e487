/**
 * Writes the seed corpora of the fuzz targets (test/fuzz/run.sh bundles and runs this):
 *   node make-seeds.js <out dir>   ->   <out dir>/<target>/<name>
 * Valid mapping files come from the init program's own encoder (src/mapping-file.ts), valid
 * protocol lines from the protocol's encoding; malformed ones sit beside them.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeMappingFile, MapRecord, RecordKind } from '../../src/mapping-file';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: node make-seeds.js <out dir>\n');
  process.exit(2);
}

function seeds(target: string, items: Record<string, Buffer | string>): void {
  const dir = join(out, target);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of Object.entries(items)) writeFileSync(join(dir, name), data);
}

const rec = (kind: RecordKind, key: string | Buffer, value: string | Buffer): MapRecord => ({
  kind,
  key: Buffer.from(key),
  value: Buffer.from(value),
});

/* ---- preload_map: whole mapping files */

const TREE = '/tmp/snaploader';
const typical = [
  rec(RecordKind.Path, '/var/task/torch/lib/libtorch_cpu.so', `${TREE}/torch/lib/libtorch_cpu.so`),
  rec(RecordKind.Path, '/var/task/torch/__init__.py', `${TREE}/torch/__init__.py`),
  rec(RecordKind.Path, '/var/task/numpy/__init__.py', `${TREE}/numpy/__init__.py`),
  rec(RecordKind.Path, '/var/task/numpy.libs/libopenblas-r0.so', `${TREE}/numpy.libs/libopenblas-r0.so`),
  rec(RecordKind.DlopenBasename, 'libtorch_cpu.so', `${TREE}/torch/lib/libtorch_cpu.so`),
  rec(RecordKind.DlopenBasename, 'libgomp.so.1', `${TREE}/torch/lib/libgomp.so.1`),
  rec(RecordKind.Memfd, `${TREE}/torch/lib/libtorch_cpu.so`, '5'),
  rec(RecordKind.PythonPath, '', TREE),
];
const layered = [
  rec(RecordKind.Path, '/opt/python/lib/python3.12/site-packages/x/_x.so', `${TREE}/python/lib/python3.12/site-packages/x/_x.so`),
  rec(RecordKind.Path, '/opt/lib/libx.so.1', `${TREE}/lib/libx.so.1`),
  rec(RecordKind.Path, '/opt/bin/tool', `${TREE}/bin/tool`),
  rec(RecordKind.PythonPath, '', `${TREE}/python`),
];
const odd = [
  rec(RecordKind.Path, '/var/task/with space/new\nline', `${TREE}/with space/new\nline`),
  rec(RecordKind.Path, Buffer.from([0x2f, 0x61, 0xff, 0xfe, 0x2f, 0x62]), `${TREE}/binary`),
  rec(RecordKind.Path, '/var/task/dup', `${TREE}/first`),
  rec(RecordKind.Path, '/var/task/dup', `${TREE}/second`),
  rec(RecordKind.Path, 'relative/key', `${TREE}/never`),
  rec(RecordKind.Path, '/var/task/dir/', `${TREE}/never`),
  rec(RecordKind.Path, '/var/task/empty-value', ''),
  rec(RecordKind.DlopenBasename, 'with/slash.so', `${TREE}/never`),
  rec(RecordKind.Path, '/', `${TREE}/root`),
  rec(9 as RecordKind, '/var/task/unknown-kind', `${TREE}/unknown`),
];
const long = [rec(RecordKind.Path, `/var/task/${'d/'.repeat(2000)}f`, `${TREE}/${'v'.repeat(4000)}`)];
const many = Array.from({ length: 60 }, (_, i) => rec(RecordKind.Path, `/var/task/pkg${i % 7}/m${i}.py`, `${TREE}/pkg${i % 7}/m${i}.py`));
const truncated = encodeMappingFile(typical).subarray(0, 60);
const hugeCount = encodeMappingFile(typical);
hugeCount.writeUInt32LE(0xffffffff, 8);
seeds('preload_map', {
  empty: encodeMappingFile([]),
  typical: encodeMappingFile(typical),
  layered: encodeMappingFile(layered),
  odd: encodeMappingFile(odd),
  long: encodeMappingFile(long),
  many: encodeMappingFile(many),
  truncated,
  'huge-count': hugeCount,
  garbage: 'not a mapping file\n',
});

/* ---- preload_lookup: <key count byte> keys... paths..., NUL-separated ('@' = basename key) */

const lookup = (keys: string[], paths: string[]): Buffer =>
  Buffer.from([String.fromCharCode(keys.length - 1), ...keys, ...paths].join('\0'), 'latin1');
seeds('preload_lookup', {
  basic: lookup(['/var/task/a/b.so', '/var/task/a/c.py', '@b.so'], ['/var/task/a/b.so', '/var/task/a/../a/b.so', 'var/task/a/c.py', 'b.so']),
  dots: lookup(['/a/b', '/a/b/c'], ['//a//b', '/./a/./b', '/a/b/.', '/a/b/', '/a/b/..', '/../a/b', 'a/../a/b/c', '../../a/b', '/a/b/c/../../b']),
  root: lookup(['/x', '/'], ['/x', 'x', './x', '/x/', '/', '', '.', '..', '//x', '/../x']),
  prefix: lookup(['/var/task/lib/one.so', '/var/taskforce/lib/one.so', '/var/tas'], ['/var/task/lib/one.so', '/var/taskforce/lib/one.so', '/var/tas', '/var/ta/s']),
  long: lookup([`/${'p/'.repeat(1000)}leaf`], [`/${'p/'.repeat(1000)}leaf`, `${'p/'.repeat(1000)}leaf`, `/${'p/./'.repeat(1100)}leaf`]),
});

/* ---- helper_protocol: what an init program sends */

const enc = (s: string | Buffer): string => {
  let o = '';
  for (const b of Buffer.from(s)) o += b <= 0x20 || b === 0x25 || b >= 0x7f ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  return o;
};
const lines = (...l: string[]): string => l.map((x) => `${x}\n`).join('');
seeds('helper_protocol', {
  success: lines(
    `MEMFD 1048576 ${enc('libtorch_cpu.so')}`,
    'MEMFD 0 empty',
    `SETENV SNAPLOADER_MAP ${enc('/tmp/snaploader/.snaploader/map')}`,
    `SETENV LD_LIBRARY_PATH ${enc('/tmp/snaploader/torch/lib:/var/lang/lib')}`,
    'UNSETENV PYTHONHOME',
    'SETENV EMPTY ',
    'DONE',
  ),
  failure: lines('MEMFD 5 x', `ERROR ${enc('SOURCE_NOT_FOUND: s3://b/k.zip: 404 (100% sure)\nsecond line')}`),
  names: lines(`MEMFD 3 ${enc('a\nb%c d é')}`, `MEMFD 1 ${'n'.repeat(300)}`, `SETENV ODD ${enc(' sp%ace\nline2\u0001 é')}`),
  malformed: lines(
    'MEMFD -1 x', 'MEMFD 9223372036854775807 x', 'MEMFD 9223372036854775808 x', 'MEMFD 5', 'MEMFD 5 a b', 'MEMFD 5 %ZZ',
    'MEMFD 5 a%', 'MEMFD 5 a%00b', 'SETENV 1BAD x', 'SETENV BAD %G0', 'UNSETENV', 'ERROR', 'FROB x', 'done', 'DONE now', '',
  ) + 'DONE\0\n',
  long: `SETENV LONG ${'v'.repeat(8180)}\nSETENV TOO_LONG ${'w'.repeat(9000)}\nDONE\n`,
  unfinished: 'DONE\nSETENV PART 1',
});

/* ---- helper_fields: <cut byte> then one field */

seeds('helper_fields', {
  encoded: `\x10${enc('a b%c\nd é')}`,
  bad: '\x05a%4g%',
  size: '\x2a9223372036854775807',
  name: '\x03_PATH9',
  timeout: '\x013600',
  zeros: '\x020009',
});
