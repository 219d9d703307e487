// Build time only (build.mjs): makes the V8 code cache of the init program for one node binary.
//
// The layer runs once, end to end (wrapper.sh -> helper -> init.js -> /bin/true), on a small
// archive served from memory over loopback, so every function a cold start compiles (the SDK's
// client, signing and request path, the zip reader, the extractor) is compiled when the cache
// is written. A module given to node with --require (not a V8 flag: those are part of the
// cache's check) keeps the vm.Script the entry compiles and writes its cache at exit, with the
// V8 flags as they are when a cold start compiles. A second run without it must then report
// the cache as used, or the build fails.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const BUCKET = 'code-cache';
const KEY = 'warm-up.zip';

/** A little of every kind of entry: small files for the tree, a stored one, two for memfds (one-shot and streamed), a symlink. */
function warmUpArchive(dir) {
  const root = join(dir, 'archive');
  const pkg = join(root, 'python', 'pkg');
  mkdirSync(pkg, { recursive: true });
  const block = Buffer.alloc(4096);
  for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;
  const fill = (bytes) => Buffer.concat(Array.from({ length: Math.ceil(bytes / block.length) }, () => block)).subarray(0, bytes);
  writeFileSync(join(pkg, '__init__.py'), 'from .core import run\n');
  writeFileSync(join(pkg, 'core.py'), 'def run():\n    return 42\n'.repeat(40));
  writeFileSync(join(pkg, 'table.dat'), fill(64 * 1024));
  writeFileSync(join(pkg, 'libmid.so'), fill(2 * 1024 * 1024));
  writeFileSync(join(pkg, 'libbig.so'), fill(9 * 1024 * 1024));
  const zipFile = join(dir, KEY);
  return promisify(execFile)('sh', ['-c', 'ln -s libmid.so python/pkg/libmid.so.1 && zip -q -r -y -X -n .dat "$1" python', 'sh', zipFile], { cwd: root })
    .then(() => readFileSync(zipFile));
}

/** Answers ranged GETs of the one object, as S3 does (206, Content-Range, ETag). */
function serve(body) {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url.split('?')[0] !== `/${BUCKET}/${KEY}`) {
      res.writeHead(404).end();
      return;
    }
    const size = body.length;
    const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    let start = 0;
    let end = size - 1;
    if (m && m[1] === '') start = Math.max(0, size - Number(m[2]));
    else if (m) [start, end] = [Number(m[1]), m[2] === '' ? size - 1 : Math.min(size - 1, Number(m[2]))];
    res.writeHead(m ? 206 : 200, {
      'Content-Length': end - start + 1,
      ...(m ? { 'Content-Range': `bytes ${start}-${end}/${size}` } : {}),
      ETag: '"0123456789abcdef0123456789abcdef"',
      'Last-Modified': new Date(0).toUTCString(),
      'Accept-Ranges': 'bytes',
    });
    res.end(body.subarray(start, end + 1));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function runLayer(opt, node, port, dir, extraEnv) {
  const env = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: dir,
    LANG: 'C.UTF-8',
    AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'code-cache',
    AWS_SECRET_ACCESS_KEY: 'code-cache',
    SNAPLOADER_BUCKET: BUCKET,
    SNAPLOADER_KEY: KEY,
    SNAPLOADER_TARGET_DIR: join(dir, `tree-${Math.random().toString(36).slice(2)}`),
    SNAPLOADER_NODE: node,
    ...extraEnv,
  };
  return promisify(execFile)(join(opt, 'snaploader', 'wrapper.sh'), ['/bin/true'], { env, maxBuffer: 1 << 20 })
    .catch((err) => {
      throw new Error(`the warm-up run for the code cache failed (${err.message.trim()}): ${err.stderr ?? ''}`);
    });
}

/**
 * Writes the code cache for `node` (which must run here) to `outFile`, for the layer in `opt`.
 * Returns its size in bytes.
 */
export async function makeCodeCache({ opt, node, outFile }) {
  const dir = mkdtempSync(join(tmpdir(), 'snaploader-code-cache-'));
  let server = null;
  try {
    server = await serve(await warmUpArchive(dir));
    const { port } = server.address();
    const hook = join(dir, 'keep-script.cjs');
    writeFileSync(hook, `'use strict';
const vm = require('node:vm');
const { writeFileSync } = require('node:fs');
let script = null;
const Script = vm.Script;
vm.Script = class extends Script { constructor(...args) { super(...args); script = this; } };
process.on('exit', () => {
  if (!script) return;
  // The V8 flag the program sets once loaded (src/heap.ts), back to its default: the cache
  // carries a hash of the flags, and a cold start compiles before the program sets it.
  require('node:v8').setFlagsFromString('--semi-space-growth-factor=2');
  const data = script.createCachedData();
  // V8 does not check a cache's bytes: the entry (src/entry.ts) checks this digest first.
  writeFileSync(${JSON.stringify(outFile)}, Buffer.concat([require('node:crypto').createHash('sha256').update(data).digest(), data]));
});
`);
    const shim = join(dir, 'node');
    writeFileSync(shim, `#!/bin/sh\nexec ${JSON.stringify(node)} --require ${JSON.stringify(hook)} "$@"\n`, { mode: 0o755 });
    mkdirSync(dirname(outFile), { recursive: true });
    rmSync(outFile, { force: true });
    await runLayer(opt, shim, port, dir, {});
    const size = readFileSync(outFile).length;
    const check = await runLayer(opt, node, port, dir, { SNAPLOADER_DEBUG: '1' });
    if (!/code cache: compiled from /.test(check.stderr)) {
      throw new Error(`${node} does not use the code cache made for it (${outFile}): ${check.stderr.split('\n').filter((l) => l.includes('code cache')).join('; ') || check.stderr}`);
    }
    return size;
  } finally {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
