#!/usr/bin/env node
// A TCP proxy that makes a loopback S3 look like S3 from inside a Lambda function's region:
// about 20 ms to the first byte of every response and about 90 MB/s per connection.
//
//   node bench/shaping-proxy.mjs --upstream 127.0.0.1:PORT [--listen-port 0]
//        [--ttfb-ms 20] [--rate-mbs 90] [--burst-kib 512] [--ttfb-per request|connection]
//
// Prints one line `{"port":N}` on stdout once it listens; stops when stdin closes or on SIGTERM.
//
// What it does, per accepted TCP connection (bytes are forwarded unchanged, both ways):
// - client -> server: forwarded at once.
// - time to first byte: when the client starts a request (its first bytes after the previous
//   response began, or the first bytes on the connection), the response's first byte is held
//   until `ttfb` ms after that moment. With `--ttfb-per connection` only the connection's
//   first response is delayed. HTTP/1.1 clients do not pipeline, so "client sends, then the
//   server answers" is one request.
// - rate: server -> client bytes leave through a token bucket of `rate` MB/s (10^6 bytes)
//   per connection, at most `burst` KiB at a time. The bucket is emptied when a response's first
//   byte is released, so every response takes ttfb + size / rate (an idle connection does not
//   bank a head start).
// - backpressure: the upstream socket is paused while more than 4 MiB wait in the proxy, and
//   nothing is written to a client whose socket buffer is full.
import net from 'node:net';

function parseArgs(argv) {
  const o = { upstream: '', listenPort: 0, ttfbMs: 20, rateMBs: 90, burstKiB: 512, ttfbPer: 'request' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--upstream') o.upstream = v;
    else if (a === '--listen-port') o.listenPort = Number(v);
    else if (a === '--ttfb-ms') o.ttfbMs = Number(v);
    else if (a === '--rate-mbs') o.rateMBs = Number(v);
    else if (a === '--burst-kib') o.burstKiB = Number(v);
    else if (a === '--ttfb-per') o.ttfbPer = v;
    else throw new Error(`unknown option ${a}`);
  }
  if (!/^[^:]+:\d+$/.test(o.upstream)) throw new Error('--upstream host:port is required');
  if (!['request', 'connection'].includes(o.ttfbPer)) throw new Error('--ttfb-per is request or connection');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const [upHost, upPort] = opts.upstream.split(':');
const RATE = opts.rateMBs * 1e6 / 1000; // bytes per ms
const BURST = opts.burstKiB * 1024;
const HIGH_WATER = 4 << 20;
const LOW_WATER = 1 << 20;
const MIN_WRITE = 64 * 1024;

function shape(client) {
  const upstream = net.connect({ host: upHost, port: Number(upPort) });
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  const queue = []; // Buffers from upstream not yet sent
  let queued = 0;
  let requestAt = -1; // when the current request started; -1: no response pending
  let anyRequest = false;
  let tokens = 0;
  let lastRefill = performance.now();
  let timer = null;
  let upstreamEnded = false;
  let closed = false;

  const destroy = () => {
    if (closed) return;
    closed = true;
    if (timer) clearTimeout(timer);
    client.destroy();
    upstream.destroy();
  };

  const schedule = (ms) => {
    if (timer || closed) return;
    timer = setTimeout(() => {
      timer = null;
      pump();
    }, Math.max(1, Math.ceil(ms)));
  };

  function pump() {
    if (closed || queue.length === 0) {
      if (!closed && upstreamEnded) client.end();
      return;
    }
    const now = performance.now();
    if (requestAt >= 0) {
      // The first byte of a response: wait for the time to first byte, then start the
      // response's rate clock from an empty bucket.
      const due = requestAt + opts.ttfbMs;
      if (now < due) return schedule(due - now);
      requestAt = -1;
      tokens = 0;
      lastRefill = now;
    }
    tokens = Math.min(BURST, tokens + (now - lastRefill) * RATE);
    lastRefill = now;
    // Writes of at least MIN_WRITE bytes (or what is left): slivers would cost more CPU than
    // the data they carry, and this proxy shares the machine with what it measures.
    const want = Math.min(MIN_WRITE, queued);
    if (tokens < want) return schedule((want - tokens) / RATE);
    if (client.writableNeedDrain) return; // 'drain' calls pump again
    client.cork();
    while (queue.length > 0 && tokens >= 1) {
      const head = queue[0];
      const n = Math.min(Math.floor(tokens), head.length);
      const out = n === head.length ? queue.shift() : head.subarray(0, n);
      if (n < head.length) queue[0] = head.subarray(n);
      queued -= n;
      tokens -= n;
      client.write(out);
    }
    client.uncork();
    if (upstream.isPaused() && queued < LOW_WATER) upstream.resume();
    if (queue.length > 0) schedule(Math.min(MIN_WRITE, queued) / RATE);
    else if (upstreamEnded) client.end();
  }

  client.on('data', (chunk) => {
    // A new request: the client speaks while no response is pending and the previous
    // response has fully left (HTTP/1.1 without pipelining).
    if (requestAt < 0 && queue.length === 0 && (opts.ttfbPer === 'request' || !anyRequest)) {
      requestAt = performance.now();
      anyRequest = true;
    }
    if (!upstream.write(chunk)) client.pause();
  });
  upstream.on('drain', () => client.resume());
  client.on('drain', pump);
  upstream.on('data', (chunk) => {
    queue.push(chunk);
    queued += chunk.length;
    if (queued > HIGH_WATER) upstream.pause();
    if (!timer) pump();
  });
  upstream.on('end', () => {
    upstreamEnded = true;
    if (queue.length === 0) client.end();
  });
  client.on('end', () => upstream.end());
  client.on('error', destroy);
  upstream.on('error', destroy);
  client.on('close', destroy);
  upstream.on('close', () => {
    if (queue.length === 0) destroy();
  });
}

const server = net.createServer(shape);
server.listen(opts.listenPort, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
const stop = () => {
  server.close();
  process.exit(0);
};
process.stdin.on('end', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
