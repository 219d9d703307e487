/**
 * The connections the archive's bytes move through (src/s3/http/): responses parsed as they
 * are read, in any split, and handed on as views of the memory they were read into; keep-alive
 * connections reused and bounded; backpressure honoured; a response cut short fails after the
 * bytes that did arrive. Against real sockets and Node's own HTTP server; TLS end to end in
 * s3-tls.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { Readable } from 'node:stream';
import { HttpRequest } from '@smithy/core/transport';
import net from 'node:net';
import { Connection } from '../src/s3/http/connection';
import { ReadingHandler } from '../src/s3/http/handler';
import { HttpParseError, ResponseParser } from '../src/s3/http/response-parser';
import { giveBack, slabCounts } from '../src/slabs';

/** Feeds `text` to a parser in pieces of `step` bytes; returns the body and what followed the message. */
function parse(text: string | Buffer, step: number): { parser: ResponseParser; body: Buffer; rest: Buffer | null } {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1');
  const parser = new ResponseParser();
  const body: Buffer[] = [];
  let rest: Buffer | null = null;
  for (let at = 0; at < bytes.length && !parser.done; at += step) {
    rest = parser.push(bytes.subarray(at, at + step), (v) => body.push(Buffer.from(v)));
    if (rest) break;
  }
  return { parser, body: Buffer.concat(body), rest };
}

describe('response parsing', () => {
  const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: t\r\n\r\n';

  test.each([1, 3, 7, 1000])('a Content-Length body split every %i bytes is the body, and the head is parsed', (step) => {
    const r = parse('HTTP/1.1 206 Partial Content\r\nContent-Length: 11\r\nETag: "abc"\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello world', step);
    expect(r.parser.done).toBe(true);
    expect(r.body.toString()).toBe('hello world');
    expect(r.parser.head).toEqual({ statusCode: 206, reason: 'Partial Content', headers: { 'content-length': '11', etag: '"abc"', 'x-a': '1, 2' } });
    expect(r.parser.keepAlive).toBe(true);
  });

  test.each([1, 2, 5, 1000])('a chunked body split every %i bytes is the chunks joined, extensions and trailers skipped', (step) => {
    const r = parse(chunked, step);
    expect(r.parser.done).toBe(true);
    expect(r.body.toString()).toBe('hello, world');
  });

  test('body bytes are views of the bytes read, not copies', () => {
    const bytes = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd');
    const views: Buffer[] = [];
    new ResponseParser().push(bytes, (v) => views.push(v));
    expect(views).toHaveLength(1);
    expect(views[0].buffer).toBe(bytes.buffer);
    expect(views[0].byteOffset).toBe(bytes.byteOffset + bytes.length - 4);
  });

  test('1xx responses are skipped; 204 has no body; a body framed by the connection ends with it', () => {
    const r = parse('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n', 4);
    expect(r.parser.head?.statusCode).toBe(204);
    expect(r.parser.done).toBe(true);
    const c = parse('HTTP/1.1 200 OK\r\n\r\nuntil the end', 5);
    expect(c.parser.done).toBe(false);
    expect(c.parser.keepAlive).toBe(false);
    c.parser.end();
    expect(c.parser.done).toBe(true);
    expect(c.body.toString()).toBe('until the end');
  });

  test('Connection: close makes the connection single-use', () => {
    expect(parse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', 100).parser.keepAlive).toBe(false);
  });

  test('bytes after the message are returned, not taken as body', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA', 100).rest?.toString()).toBe('EXTRA');
  });

  test('a body cut short by the end of the connection is ECONNRESET "aborted"; no head at all is "socket hang up"', () => {
    const r = parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', 100);
    expect(() => r.parser.end()).toThrow(expect.objectContaining({ code: 'ECONNRESET', message: 'aborted' }));
    expect(() => new ResponseParser().end()).toThrow(expect.objectContaining({ code: 'ECONNRESET', message: 'socket hang up' }));
  });

  test.each([
    ['a status line that is not HTTP/1.x', 'ICY 200 OK\r\n\r\n'],
    ['a header line without a colon', 'HTTP/1.1 200 OK\r\nbroken\r\n\r\n'],
    ['a Content-Length that is not a number', 'HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n'],
    ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n'],
  ])('HttpParseError (code HPE_INVALID): %s', (_name, text) => {
    expect(() => parse(text, 100)).toThrow(HttpParseError);
    expect(() => parse(text, 100)).toThrow(expect.objectContaining({ code: 'HPE_INVALID' }));
  });

  test('a head larger than 64 KiB is refused', () => {
    expect(() => parse(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(70000)}`, 4096)).toThrow(/response head larger than/);
  });
});

describe('the request handler, against Node\'s HTTP server', () => {
  let server: http.Server;
  let port: number;
  let connections = 0;
  let active = 0;
  let maxActive = 0;
  const big = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      active++;
      maxActive = Math.max(maxActive, active);
      res.on('close', () => active--);
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/big') {
        res.writeHead(200, { 'content-length': big.length });
        res.end(big);
      } else if (url.pathname === '/chunked') {
        res.writeHead(200, { 'x-query': url.search });
        res.write('part one, ');
        setTimeout(() => res.end('part two'), 20);
      } else if (url.pathname === '/cut') {
        res.writeHead(200, { 'content-length': 1000 });
        res.write(Buffer.alloc(300, 1));
        setTimeout(() => res.socket?.destroy(), 50);
      } else if (url.pathname === '/slow') {
        setTimeout(() => res.end('late'), 60);
      } else if (url.pathname === '/never') {
        // no answer
      } else {
        res.end(`${req.method} ${req.url} host=${req.headers.host}`);
      }
    });
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const request = (path: string, query?: Record<string, string>): HttpRequest =>
    new HttpRequest({ protocol: 'http:', hostname: '127.0.0.1', port, method: 'GET', path, query, headers: {} });

  async function text(body: unknown): Promise<string> {
    const parts: Buffer[] = [];
    for await (const c of body as Readable) parts.push(c as Buffer);
    return Buffer.concat(parts).toString();
  }

  test('a response is the server\'s, its body a Readable; Host is added and the query string built', async () => {
    const h = new ReadingHandler({ maxSockets: 2, connectionTimeoutMs: 3000 });
    const { response } = await h.handle(request('/echo', { 'x-id': 'a b', versionId: 'v1' }));
    expect(response.statusCode).toBe(200);
    expect(response.body).toBeInstanceOf(Readable);
    expect(await text(response.body)).toBe(`GET /echo?versionId=v1&x-id=a%20b host=127.0.0.1:${port}`);
    h.destroy();
  });

  test('requests one after another reuse one keep-alive connection', async () => {
    const h = new ReadingHandler({ maxSockets: 4, connectionTimeoutMs: 3000 });
    const before = connections;
    for (let i = 0; i < 5; i++) expect(await text((await h.handle(request(`/n${i}`))).response.body)).toMatch(`/n${i}`);
    expect(connections - before).toBe(1);
    h.destroy();
  });

  test('no more than maxSockets requests are in flight; the others wait for a connection', async () => {
    const h = new ReadingHandler({ maxSockets: 2, connectionTimeoutMs: 3000 });
    maxActive = 0;
    const before = connections;
    const all = await Promise.all(Array.from({ length: 6 }, () => h.handle(request('/slow')).then((r) => text(r.response.body))));
    expect(all).toEqual(Array(6).fill('late'));
    expect(maxActive).toBe(2);
    expect(connections - before).toBe(2);
    h.destroy();
  });

  test('a chunked body arrives whole', async () => {
    const h = new ReadingHandler({ maxSockets: 1, connectionTimeoutMs: 3000 });
    const { response } = await h.handle(request('/chunked'));
    expect(response.headers['transfer-encoding']).toBe('chunked');
    expect(await text(response.body)).toBe('part one, part two');
    h.destroy();
  });

  test('a consumer that does not read stops the socket (backpressure); every byte still arrives, in order', async () => {
    const h = new ReadingHandler({ maxSockets: 1, connectionTimeoutMs: 3000 });
    const { response } = await h.handle(request('/big'));
    const body = response.body as Readable;
    await new Promise((r) => setTimeout(r, 200));
    // Without backpressure the whole 8 MiB would be queued in the body by now.
    expect(body.readableLength).toBeLessThan(1024 * 1024);
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(c as Buffer);
    expect(Buffer.concat(parts).equals(big)).toBe(true);
    h.destroy();
  });

  test('a body read into slabs: given back, they are read into again; kept, their bytes stay', async () => {
    const h = new ReadingHandler({ maxSockets: 1, connectionTimeoutMs: 3000 });
    const read = async (give: boolean): Promise<{ views: Buffer[]; reused: number; allocated: number }> => {
      const before = { ...slabCounts };
      const views: Buffer[] = [];
      for await (const c of (await h.handle(request('/big'))).response.body as Readable) {
        views.push(c as Buffer);
        if (give) giveBack(c as Buffer);
      }
      return { views, reused: slabCounts.reused - before.reused, allocated: slabCounts.allocated - before.allocated };
    };
    const kept = await read(false);
    expect(kept.allocated).toBeGreaterThanOrEqual(30); // nothing given back: 8 MiB in new 256 KiB slabs
    const given = await read(true);
    expect(given.allocated).toBeLessThanOrEqual(2);
    expect(given.reused).toBeGreaterThanOrEqual(30);
    // The views of the first body were never given back: nothing wrote over them.
    expect(Buffer.concat(kept.views).equals(big)).toBe(true);
    h.destroy();
  });

  test('a body cut short delivers the bytes that came, then fails with ECONNRESET; the next request gets a new connection', async () => {
    const h = new ReadingHandler({ maxSockets: 1, connectionTimeoutMs: 3000 });
    const { response } = await h.handle(request('/cut'));
    let got = 0;
    let failure: { code?: string } | null = null;
    try {
      for await (const c of response.body as Readable) got += (c as Buffer).length;
    } catch (err) {
      failure = err as { code?: string };
    }
    expect(got).toBe(300);
    expect(failure?.code).toBe('ECONNRESET');
    expect(await text((await h.handle(request('/after'))).response.body)).toMatch('/after');
    h.destroy();
  });

  test('an abort before the response rejects with the signal\'s reason and frees the connection', async () => {
    const h = new ReadingHandler({ maxSockets: 1, connectionTimeoutMs: 3000 });
    const ac = new AbortController();
    const why = new Error('stop now');
    setTimeout(() => ac.abort(why), 30);
    await expect(h.handle(request('/never'), { abortSignal: ac.signal as never })).rejects.toBe(why);
    expect(await text((await h.handle(request('/again'))).response.body)).toMatch('/again');
    h.destroy();
  });

  test('a refused connection fails with ECONNREFUSED, as the SDK\'s handler does', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const free = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const h = new ReadingHandler({ maxSockets: 1, connectionTimeoutMs: 3000 });
    const req = new HttpRequest({ protocol: 'http:', hostname: '127.0.0.1', port: free, method: 'GET', path: '/', headers: {} });
    await expect(h.handle(req)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  test('a header value with a line break is refused before anything is sent', async () => {
    const h = new ReadingHandler({ maxSockets: 1, connectionTimeoutMs: 3000 });
    const req = new HttpRequest({ protocol: 'http:', hostname: '127.0.0.1', port, method: 'GET', path: '/', headers: { 'x-a': 'a\r\nx-injected: 1' } });
    await expect(h.handle(req)).rejects.toThrow(/line break/);
    h.destroy();
  });

  test('a request on a connection the server has closed fails at once with ECONNRESET, never waits', async () => {
    const closing = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => closing.listen(0, '127.0.0.1', r));
    const conn = new Connection({ protocol: 'http:', host: '127.0.0.1', port: (closing.address() as AddressInfo).port }, { connectTimeoutMs: 3000 });
    await conn.ready;
    await new Promise((r) => conn.socket.once('close', r));
    const failed = await new Promise<Error>((resolve) => conn.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'), () => resolve(new Error('a head')), resolve));
    expect(failed).toMatchObject({ code: 'ECONNRESET' });
    await new Promise((r) => closing.close(r));
  });

  test('a server that answers with more than one response is a parse error (HPE_INVALID), not a second body', async () => {
    const chatty = net.createServer((s) => s.once('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n')));
    await new Promise<void>((r) => chatty.listen(0, '127.0.0.1', r));
    const h = new ReadingHandler({ maxSockets: 1, connectionTimeoutMs: 3000 });
    const req = new HttpRequest({ protocol: 'http:', hostname: '127.0.0.1', port: (chatty.address() as AddressInfo).port, method: 'GET', path: '/', headers: {} });
    const { response } = await h.handle(req);
    await expect(text(response.body)).rejects.toMatchObject({ code: 'HPE_INVALID' });
    h.destroy();
    await new Promise((r) => chatty.close(r));
  });
});

describe('over TLS, where one socket read delivers several records', () => {
  let dir: string;
  let server: tls.Server;
  let port: number;
  const bodyOf = (n: number): Buffer => Buffer.alloc(n, n % 251);
  const sockets = new Set<tls.TLSSocket>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snaploader-transport-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
    // Each request "GET /<n>" is answered with n bytes, head and body in one write (many records).
    server = tls.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (s) => {
      let pending = '';
      s.on('data', (d: Buffer) => {
        pending += d.toString('latin1');
        for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
          const n = Number(/^GET \/(\d+) /.exec(pending)![1]);
          pending = pending.slice(end + 4);
          s.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${n}\r\n\r\n`), bodyOf(n)]));
        }
      });
      s.on('error', () => undefined);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test('a response that ends while its reader holds the socket back leaves the connection reading: the next one is answered', async () => {
    const h = new ReadingHandler({ maxSockets: 1, connectionTimeoutMs: 3000, ca: readFileSync(join(dir, 'cert.pem'), 'utf8') });
    try {
      for (let i = 0; i < 60; i++) await answered(h, i);
    } finally {
      h.destroy();
    }
  }, 60000);

  /** Request i on h: its body, read only once the records have piled up behind it, arrives whole within 3 s. */
  async function answered(h: ReadingHandler, i: number): Promise<void> {
    const n = 1000 + ((i * 37_123) % 300_000);
    const req = new HttpRequest({ protocol: 'https:', hostname: 'localhost', port, method: 'GET', path: `/${n}`, headers: {} });
    const got = (async (): Promise<Buffer> => {
      const { response } = await h.handle(req);
      await new Promise((r) => setTimeout(r, 5)); // the records pile up behind the body: backpressure
      const parts: Buffer[] = [];
      for await (const c of response.body as Readable) parts.push(c as Buffer);
      return Buffer.concat(parts);
    })();
    const late = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`response ${i} (${n} bytes) not answered within 3 s`)), 3000).unref());
    expect((await Promise.race([got, late])).equals(bodyOf(n))).toBe(true);
  }
});
