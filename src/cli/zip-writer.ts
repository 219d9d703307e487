/**
 * Writes the items `collect` found to a zip with yazl: files deflated (stored when they are
 * compressed already), symlinks as Unix symlink entries, zip64 only when sizes need it. The
 * SHA-256 is taken from the bytes as they are written; the file appears under its name only
 * once complete.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { ZipFile } from 'yazl';
import type { Item } from './collect';
import type { Progress } from './output';

/** Formats that are compressed already: deflating them again costs init time for nothing. */
const COMPRESSED = /\.(zip|whl|jar|gz|tgz|bz2|xz|zst|lz4|7z|png|jpe?g|gif|webp|mp[34]|woff2?)$/i;

export interface Written {
  bytes: number;
  sha256: string;
}

export async function writeZip(items: Item[], outPath: string, progress: Progress): Promise<Written> {
  const partial = `${outPath}.partial-${process.pid}`;
  const zip = new ZipFile();
  for (const it of items) {
    if (it.kind === 'file') {
      zip.addFile(it.path, it.name, { mtime: it.mtime, mode: it.mode, compress: !COMPRESSED.test(it.name) && it.size > 0 });
    } else if (it.kind === 'symlink') {
      zip.addBuffer(Buffer.from(it.target!), it.name, { mtime: it.mtime, mode: 0o120777, compress: false });
    } else {
      zip.addEmptyDirectory(it.name, { mtime: it.mtime, mode: it.mode });
    }
  }
  zip.end();
  const hash = createHash('sha256');
  let bytes = 0;
  const file = createWriteStream(partial);
  try {
    await new Promise<void>((resolve, reject) => {
      zip.outputStream.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
        progress.update(bytes);
      });
      zip.outputStream.on('error', reject);
      file.on('error', reject);
      file.on('finish', () => resolve());
      zip.outputStream.pipe(file);
    });
    renameSync(partial, outPath);
  } catch (err) {
    file.destroy();
    rmSync(partial, { force: true });
    throw err;
  } finally {
    progress.stop();
  }
  return { bytes, sha256: hash.digest('hex') };
}
