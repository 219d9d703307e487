/** The mapping file's TypeScript writer and reader agree, for any bytes a path can hold. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMappingFile, encodeMappingFile, RecordKind, type MapRecord } from '../src/mapping-file';
import { ROOT } from './support/paths';

const records: MapRecord[] = [
  { kind: RecordKind.Path, key: Buffer.from('/var/task/lib/libx.so'), value: Buffer.from('/tmp/snaploader/lib/libx.so') },
  { kind: RecordKind.Path, key: Buffer.from('/var/task/odd name\nwith newline\xff', 'latin1'), value: Buffer.from('/tmp/t/odd') },
  { kind: RecordKind.DlopenBasename, key: Buffer.from('libx.so'), value: Buffer.from('/tmp/snaploader/lib/libx.so') },
  { kind: RecordKind.Memfd, key: Buffer.from('/tmp/snaploader/lib/libx.so'), value: Buffer.from('7') },
  { kind: RecordKind.PythonPath, key: Buffer.alloc(0), value: Buffer.from('/tmp/snaploader') },
];

test('round-trips every record kind and non-UTF-8 bytes', () => {
  expect(decodeMappingFile(encodeMappingFile(records))).toEqual(records);
});

test('the Python hook reads what the writer wrote', () => {
  const dir = mkdtempSync(join(tmpdir(), 'snaploader-map-'));
  try {
    const file = join(dir, 'map');
    writeFileSync(file, encodeMappingFile(records));
    const out = execFileSync('python3', ['-c', [
      'import sys; sys.path.insert(0, sys.argv[1]); import snaploader_site as s',
      'print([(k, key.hex(), v.hex()) for k, key, v in s.read_map(sys.argv[2])])',
    ].join('\n'), join(ROOT, 'layer', 'python'), file], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(out.trim()).toBe(`[${records.map((r) => `(${r.kind}, '${r.key.toString('hex')}', '${r.value.toString('hex')}')`).join(', ')}]`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('refuses a NUL byte or an over-long field', () => {
  expect(() => encodeMappingFile([{ kind: RecordKind.Path, key: Buffer.from('/a\0b'), value: Buffer.from('/x') }])).toThrow(/NUL byte/);
  expect(() => encodeMappingFile([{ kind: RecordKind.Path, key: Buffer.alloc(5000, 0x61), value: Buffer.from('/x') }])).toThrow(/limit is 4096/);
});

test.each([
  ['truncated', (b: Buffer) => b.subarray(0, b.length - 3), /malformed|truncated/],
  ['trailing bytes', (b: Buffer) => Buffer.concat([b, Buffer.from([0])]), /1 trailing bytes/],
  ['wrong magic', (b: Buffer) => Buffer.concat([Buffer.from('XNAPMAP\x01'), b.subarray(8)]), /not a snaploader mapping file/],
])('the reader rejects a file with %s', (_n, damage, message) => {
  expect(() => decodeMappingFile(damage(encodeMappingFile(records)))).toThrow(message);
});
