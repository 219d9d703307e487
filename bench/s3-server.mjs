#!/usr/bin/env node
// The benchmark's S3: s3rver (the S3-compatible server the tests use) on loopback, in its own
// process so that its CPU time is not mixed with the harness's sampling.
//   node bench/s3-server.mjs <directory>
// Prints one line `{"port":N}` on stdout when it listens; stops when stdin closes or on SIGTERM.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const S3rver = require('s3rver');

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node bench/s3-server.mjs <directory>\n');
  process.exit(2);
}
const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, resetOnClose: false });
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
