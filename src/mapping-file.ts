/**
 * The mapping file read by the preload library and by snaploader_site.py.
 * Format: docs/architecture.md, "The mapping file". Paths are bytes, never decoded, so any
 * name a zip can hold survives the trip: Buffers, or latin1 strings (one char per byte),
 * which is how the init program builds a file of thousands of records without a Buffer each.
 */

export const MAP_MAGIC = Buffer.from('SNAPMAP\x01', 'latin1');
export const MAX_FIELD_BYTES = 4096;

export enum RecordKind {
  Path = 1,
  DlopenBasename = 2,
  Memfd = 3,
  PythonPath = 4,
}

/** A record as read back. */
export interface MapRecord {
  kind: RecordKind;
  key: Buffer;
  value: Buffer;
}

/** A record to write: its key and value as Buffers or as latin1 strings (bytes, one char each). */
export interface MapRecordInput {
  kind: RecordKind;
  key: Buffer | string;
  value: Buffer | string;
}

function checkField(what: string, field: string): void {
  if (field.length > MAX_FIELD_BYTES) {
    throw new RangeError(`mapping ${what} is ${field.length} bytes; the limit is ${MAX_FIELD_BYTES}`);
  }
  if (field.includes('\0')) throw new RangeError(`mapping ${what} contains a NUL byte`);
}

const bytes = (field: Buffer | string): string => (typeof field === 'string' ? field : field.toString('latin1'));

/** The file's bytes, sized first and written into one buffer. */
export function encodeMappingFile(records: readonly MapRecordInput[]): Buffer {
  const keys: string[] = [];
  const values: string[] = [];
  let size = 16;
  for (const r of records) {
    const key = bytes(r.key);
    const value = bytes(r.value);
    checkField('key', key);
    checkField('value', value);
    keys.push(key);
    values.push(value);
    size += 12 + key.length + 1 + value.length + 1;
  }
  const out = Buffer.alloc(size);
  MAP_MAGIC.copy(out, 0);
  out.writeUInt32LE(records.length, 8);
  let at = 16;
  records.forEach((r, i) => {
    out[at] = r.kind;
    out.writeUInt32LE(keys[i].length, at + 4);
    out.writeUInt32LE(values[i].length, at + 8);
    at += 12;
    at += out.write(keys[i], at, 'latin1') + 1;
    at += out.write(values[i], at, 'latin1') + 1;
  });
  return out;
}

export function decodeMappingFile(buf: Buffer): MapRecord[] {
  if (buf.length < 16 || !buf.subarray(0, 8).equals(MAP_MAGIC)) throw new Error('not a snaploader mapping file');
  const count = buf.readUInt32LE(8);
  const records: MapRecord[] = [];
  let at = 16;
  for (let i = 0; i < count; i++) {
    if (at + 12 > buf.length) throw new Error(`mapping file truncated in record ${i}`);
    const kind = buf.readUInt8(at);
    const keyLen = buf.readUInt32LE(at + 4);
    const valueLen = buf.readUInt32LE(at + 8);
    if (keyLen > MAX_FIELD_BYTES || valueLen > MAX_FIELD_BYTES) throw new Error(`mapping record ${i} too long`);
    const keyAt = at + 12;
    const valueAt = keyAt + keyLen + 1;
    const end = valueAt + valueLen + 1;
    if (end > buf.length || buf[valueAt - 1] !== 0 || buf[end - 1] !== 0) throw new Error(`mapping record ${i} malformed`);
    const key = buf.subarray(keyAt, keyAt + keyLen);
    const value = buf.subarray(valueAt, valueAt + valueLen);
    if (key.includes(0) || value.includes(0)) throw new Error(`mapping record ${i} contains a NUL byte`);
    records.push({ kind, key, value });
    at = end;
  }
  if (at !== buf.length) throw new Error(`mapping file has ${buf.length - at} trailing bytes`);
  return records;
}
