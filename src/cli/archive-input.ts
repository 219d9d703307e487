/**
 * Opens the archive a command reads: a local zip or an S3 object (s3://bucket/key, through
 * the init program's own S3 source), as its size, its tail and ranged reads: what the zip
 * directory reader (src/zip/directory.ts) needs.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { s3EndpointFromEnv } from '../s3/endpoint';
import { openS3Source } from '../s3/source';
import { readCentralDirectory, TAIL_BYTES, type CentralDirectory } from '../zip/directory';
import { CliError, EXIT } from './errors';
import { parseS3Url } from './args';

export interface OpenedArchive {
  /** The path or s3:// URL, for messages. */
  name: string;
  size: number;
  directory: CentralDirectory;
}

function readLocal(fd: number, start: number, end: number): Buffer {
  const buf = Buffer.alloc(end - start);
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, start + done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}

async function openLocal(path: string): Promise<OpenedArchive> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(code === 'ENOENT' ? 'INPUT_NOT_FOUND' : 'INPUT_UNREADABLE',
      `cannot open ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, EXIT.INPUT);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CliError('INPUT_UNREADABLE', `${path} is not a file: give the zip archive (snaploader pack makes one from a directory)`, EXIT.INPUT);
    const tail = readLocal(fd, Math.max(0, st.size - TAIL_BYTES), st.size);
    const directory = await readCentralDirectory(st.size, tail, async (start, end) => readLocal(fd, start, end));
    return { name: path, size: st.size, directory };
  } finally {
    closeSync(fd);
  }
}

async function openRemote(url: string, command: string): Promise<OpenedArchive> {
  const { bucket, key } = parseS3Url(command, url);
  const endpoint = s3EndpointFromEnv(process.env);
  const { source, tail } = await openS3Source({
    bucket, key, forcePathStyle: endpoint !== undefined, maxSockets: 4, idleTimeoutMs: 10000,
    versionId: process.env.SNAPLOADER_VERSION_ID || undefined,
  }, TAIL_BYTES);
  const directory = await readCentralDirectory(source.size, tail, source.read.bind(source));
  return { name: url, size: source.size, directory };
}

export function openArchive(input: string, command: string): Promise<OpenedArchive> {
  return input.startsWith('s3://') ? openRemote(input, command) : openLocal(input);
}
