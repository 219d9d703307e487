#!/usr/bin/env node
// The network limit: the whole object with parallel ranged GETs, bodies discarded.
//   node bench/raw-get.mjs <object URL> <size> <concurrency> <range bytes>
// Same concurrency and range size as the engine's defaults (SNAPLOADER_CONCURRENCY,
// SNAPLOADER_RANGE_SIZE); one keep-alive connection per GET in flight. Each socket reads
// into one reused buffer (`onread`) and only the response head is parsed: the least CPU a
// client can spend on these bytes (Node's HTTP client spends about four times as much user
// CPU). Prints {"bytes":N}.
import net from 'node:net';

const [url, sizeArg, concArg, rangeArg] = process.argv.slice(2);
const target = new URL(url);
const size = Number(sizeArg);
const concurrency = Number(concArg);
const rangeSize = Number(rangeArg);
let next = 0;
let total = 0;

/** One connection; get(start, end) resolves when the response's body is read. */
function connection() {
  let onBytes = null;
  let failed = null;
  const socket = net.connect({
    host: target.hostname,
    port: Number(target.port || 80),
    onread: { buffer: Buffer.allocUnsafe(256 * 1024), callback: (n, buf) => onBytes?.(buf.subarray(0, n)) },
  });
  socket.setNoDelay(true);
  socket.on('error', (err) => (failed = err));
  socket.on('close', () => onBytes?.(null));
  const get = (start, end) => new Promise((resolve, reject) => {
    if (failed) return reject(failed);
    let head = Buffer.alloc(0);
    let left = -1;
    onBytes = (bytes) => {
      if (bytes === null) return reject(failed ?? new Error(`connection closed during bytes ${start}-${end - 1}`));
      if (left < 0) {
        head = Buffer.concat([head, bytes]);
        const at = head.indexOf('\r\n\r\n');
        if (at < 0) return;
        const text = head.toString('latin1', 0, at);
        const status = /^HTTP\/1\.1 (\d+)/.exec(text)?.[1];
        const length = /\r\ncontent-length: *(\d+)/i.exec(text)?.[1];
        if (status !== '206' || length === undefined) return reject(new Error(`HTTP ${status} for bytes ${start}-${end - 1}: ${text.split('\r\n')[0]}`));
        left = Number(length);
        bytes = head.subarray(at + 4);
      }
      left -= bytes.length;
      total += bytes.length;
      if (left === 0) {
        onBytes = null;
        resolve();
      }
    };
    socket.write(`GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nRange: bytes=${start}-${end - 1}\r\n\r\n`);
  });
  return { get, close: () => socket.destroy() };
}

async function worker() {
  const conn = connection();
  try {
    while (next < size) {
      const start = next;
      next = Math.min(size, next + rangeSize);
      await conn.get(start, next);
    }
  } finally {
    conn.close();
  }
}

await Promise.all(Array.from({ length: concurrency }, worker));
if (total !== size) throw new Error(`got ${total} bytes of ${size}`);
process.stdout.write(`${JSON.stringify({ bytes: total })}\n`);
