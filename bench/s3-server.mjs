#!/usr/bin/env node
// The benchmark's S3: s3rver (the S3-compatible server the tests use) on loopback, in its own
// process so that its CPU time is not mixed with the harness's sampling.
//   node bench/s3-server.mjs <directory>
// Prints one line `{"port":N}` on stdout when it listens; stops when stdin closes or on SIGTERM.
// Unlike s3rver, it answers a suffix range (`bytes=-N`) with the object's last N bytes, as S3
// does, so that an init program pays one GET for the archive's tail here, as it would on S3.
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const S3rver = require('s3rver');

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node bench/s3-server.mjs <directory>\n');
  process.exit(2);
}
const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, resetOnClose: false });
// s3rver reads `bytes=-N` as `bytes=0-N`. Before it sees the request, rewrite a suffix range
// on a path-style GET to the explicit range S3 would serve, from the stored object's size.
server.middleware.unshift(async (ctx, next) => {
  const suffix = /^bytes=-(\d+)$/.exec(ctx.get('range'));
  const [bucket, ...key] = ctx.path.slice(1).split('/');
  if (ctx.method === 'GET' && suffix && Number(suffix[1]) > 0 && key.length > 0) {
    const object = join(dir, decodeURIComponent(bucket), `${key.map(decodeURIComponent).join('/')}._S3rver_object`);
    const size = await stat(object).then((s) => s.size, () => 0);
    if (size > 0) ctx.req.headers.range = `bytes=${Math.max(0, size - Number(suffix[1]))}-${size - 1}`;
  }
  await next();
});
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
let closing = false;
const stop = async () => {
  if (closing) return;
  closing = true;
  await server.close().catch(() => {});
  process.exit(0);
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
