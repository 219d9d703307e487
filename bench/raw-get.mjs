#!/usr/bin/env node
// The network limit: the whole object with parallel ranged GETs, bodies discarded.
//   node bench/raw-get.mjs <object URL> <size> <concurrency> <range bytes>
// Same concurrency and range size as the engine's defaults (SNAPLOADER_CONCURRENCY,
// SNAPLOADER_RANGE_SIZE); one keep-alive connection per GET in flight. Prints {"bytes":N}.
import http from 'node:http';

const [url, sizeArg, concArg, rangeArg] = process.argv.slice(2);
const size = Number(sizeArg);
const concurrency = Number(concArg);
const rangeSize = Number(rangeArg);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
let next = 0;
let total = 0;

function get(start, end) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: { Range: `bytes=${start}-${end - 1}` } }, (res) => {
      if (res.statusCode !== 206) {
        reject(new Error(`HTTP ${res.statusCode} for bytes ${start}-${end - 1}`));
        res.resume();
        return;
      }
      res.on('data', (chunk) => { total += chunk.length; });
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function worker() {
  while (next < size) {
    const start = next;
    next = Math.min(size, next + rangeSize);
    await get(start, next);
  }
}

await Promise.all(Array.from({ length: concurrency }, worker));
agent.destroy();
if (total !== size) throw new Error(`got ${total} bytes of ${size}`);
process.stdout.write(`${JSON.stringify({ bytes: total })}\n`);
