/**
 * A fault-injecting HTTP proxy for S3 traffic: it sits between the code under test and a
 * local S3 server (s3rver) on loopback and, per request, forwards it untouched or misbehaves
 * the way a real network or a real S3 does: connections reset before or in the middle of a
 * body, bodies cut short after complete headers, bodies that stall, requests never answered,
 * S3 error responses (503 SlowDown, 500, 403, 404, region redirects) with S3's XML bodies.
 *
 * Faults come from a rule list, first match wins; each rule fires `times` times (default 1).
 * Like S3, and unlike s3rver, it answers 412 PreconditionFailed to a GET whose If-Match does
 * not match the object's current ETag (turn off with `enforceIfMatch: false`).
 */
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';

export interface RequestInfo {
  /** 1-based, in arrival order over every request this proxy has seen. */
  n: number;
  method: string;
  /** Path and query, as sent. */
  url: string;
  range: string | undefined;
  ifMatch: string | undefined;
}

export type Action =
  | { kind: 'forward' }
  /** Forward; send the headers and `afterBytes` bytes of the body, then reset the connection (RST). */
  | { kind: 'reset'; afterBytes: number }
  /** Forward; send complete headers (the full Content-Length) and `afterBytes` bytes, then close the connection (FIN). */
  | { kind: 'truncate'; afterBytes: number }
  /** Forward; send the headers and `afterBytes` bytes, then nothing for `ms` (default: until the client gives up), then the rest. */
  | { kind: 'stall'; afterBytes: number; ms?: number }
  /** Read the request and never answer it. */
  | { kind: 'hang' }
  /** Reset the connection before any response. */
  | { kind: 'refuse' }
  /** Answer as S3 does when it refuses a request: a status, XML error body and headers. */
  | { kind: 'error'; status: number; code: string; message: string; headers?: Record<string, string>; fields?: Record<string, string> }
  /** Run something first (e.g. replace the object), then `then` (default: forward). */
  | { kind: 'before'; run: (req: RequestInfo) => Promise<void>; then?: Action };

export type Matcher =
  | ((req: RequestInfo) => boolean)
  | {
    /** The request with this arrival number. */
    nth?: number;
    /** An explicit range "bytes=a-b" (the reads after the first). */
    ranged?: boolean;
    /** A suffix range "bytes=-n" (the first read: the end of the archive). */
    suffix?: boolean;
    method?: string;
  };

export interface Rule {
  when: Matcher;
  action: Action;
  /** How many requests the rule applies to (default 1; Infinity for all). */
  times?: number;
}

export interface LogEntry extends RequestInfo {
  action: Action['kind'];
  /** The status the client was sent, when it was sent one. */
  status?: number;
  /** Body bytes the client was sent. */
  bytes: number;
  /** The ETag of the object behind the response, when the proxy saw one. */
  etag?: string;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'te', 'trailer', 'upgrade']);

export function s3ErrorXml(code: string, message: string, fields: Record<string, string> = {}): string {
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const extra = Object.entries(fields).map(([k, v]) => `<${k}>${esc(v)}</${k}>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message>${extra}` +
    '<RequestId>FAULTPROXY0000001</RequestId><HostId>fault-proxy</HostId></Error>';
}

/** S3's answers, as the proxy sends them. */
export const S3_ERRORS = {
  slowDown: { kind: 'error', status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' },
  internal: { kind: 'error', status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' },
  accessDenied: { kind: 'error', status: 403, code: 'AccessDenied', message: 'Access Denied' },
  noSuchKey: { kind: 'error', status: 404, code: 'NoSuchKey', message: 'The specified key does not exist.' },
  permanentRedirect: (region: string, bucket: string): Action => ({
    kind: 'error', status: 301, code: 'PermanentRedirect',
    message: 'The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.',
    headers: { 'x-amz-bucket-region': region },
    fields: { Endpoint: `${bucket}.s3.${region}.amazonaws.com`, Bucket: bucket },
  }),
  wrongRegion: (asked: string, region: string): Action => ({
    kind: 'error', status: 400, code: 'AuthorizationHeaderMalformed',
    message: `The authorization header is malformed; the region '${asked}' is wrong; expecting '${region}'`,
    fields: { Region: region },
  }),
} satisfies Record<string, Action | ((...a: string[]) => Action)>;

function matches(m: Matcher, req: RequestInfo): boolean {
  if (typeof m === 'function') return m(req);
  if (m.nth !== undefined && req.n !== m.nth) return false;
  if (m.method !== undefined && req.method !== m.method) return false;
  if (m.ranged && !/^bytes=\d+-\d+$/.test(req.range ?? '')) return false;
  if (m.suffix && !/^bytes=-\d+$/.test(req.range ?? '')) return false;
  return true;
}

export interface ProxyOptions {
  /** Answer 412 to a GET whose If-Match is not the object's ETag, as S3 does (default true). */
  enforceIfMatch?: boolean;
  /** A client of the upstream server, used to answer suffix ranges as S3 does (s3rver does not). */
  upstreamClient?: S3Client;
}

export class FaultProxy {
  readonly log: LogEntry[] = [];
  private rules: (Rule & { left: number })[] = [];
  private server: http.Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private count = 0;
  endpoint = '';

  constructor(private readonly upstream: string, private readonly opts: ProxyOptions = {}) {}

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 5000;
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Replaces the rules and clears the log. */
  reset(rules: Rule[] = [], opts: { enforceIfMatch?: boolean } = {}): void {
    this.rules = rules.map((r) => ({ ...r, left: r.times ?? 1 }));
    this.log.length = 0;
    if (opts.enforceIfMatch !== undefined) this.opts.enforceIfMatch = opts.enforceIfMatch;
  }

  /** Log entries of GETs, in arrival order. */
  gets(): LogEntry[] {
    return this.log.filter((e) => e.method === 'GET');
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private later(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
  }

  private pick(req: RequestInfo): Action {
    for (const r of this.rules) {
      if (r.left > 0 && matches(r.when, req)) {
        r.left--;
        return r.action;
      }
    }
    return { kind: 'forward' };
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const info: RequestInfo = {
      n: ++this.count,
      method: req.method ?? '',
      url: req.url ?? '',
      range: req.headers.range,
      ifMatch: req.headers['if-match'] as string | undefined,
    };
    const body: Buffer[] = [];
    req.on('data', (d: Buffer) => body.push(d));
    req.on('end', () => {
      void this.act(this.pick(info), info, req, res, Buffer.concat(body)).catch((err) => {
        res.destroy(err as Error);
      });
    });
  }

  private async act(action: Action, info: RequestInfo, req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    const entry: LogEntry = { ...info, action: action.kind, bytes: 0 };
    if (action.kind !== 'before') this.log.push(entry);
    switch (action.kind) {
      case 'before':
        await action.run(info);
        return this.act(action.then ?? { kind: 'forward' }, info, req, res, body);
      case 'hang':
        return; // the socket stays open until the client (or stop()) closes it
      case 'refuse':
        req.socket.resetAndDestroy();
        return;
      case 'error': {
        const xml = Buffer.from(s3ErrorXml(action.code, action.message, action.fields));
        entry.status = action.status;
        entry.bytes = xml.length;
        res.writeHead(action.status, { 'content-type': 'application/xml', 'content-length': xml.length, 'x-amz-request-id': 'FAULTPROXY0000001', ...action.headers });
        res.end(xml);
        return;
      }
      default:
        return this.forward(action, entry, req, res, body);
    }
  }

  /**
   * The upstream's answer. s3rver reads a suffix range "bytes=-N" as "bytes=0-N"; S3 answers
   * the last N bytes, so with an upstream client the proxy asks for those itself.
   */
  private async upstreamResponse(req: http.IncomingMessage, body: Buffer): Promise<Upstream> {
    const suffix = /^bytes=-(\d+)$/.exec(req.headers.range ?? '');
    const client = this.opts.upstreamClient;
    if (suffix && client && req.method === 'GET') {
      const path = decodeURIComponent((req.url ?? '').split('?')[0]).replace(/^\//, '');
      const bucket = path.slice(0, path.indexOf('/'));
      const key = path.slice(path.indexOf('/') + 1);
      try {
        const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        const size = Number(head.ContentLength);
        const n = Math.min(size, Number(suffix[1]));
        if (n === 0) throw new Error('empty object: let the upstream answer');
        const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${size - n}-${size - 1}` }));
        return {
          status: 206,
          headers: {
            'content-type': got.ContentType ?? 'binary/octet-stream',
            'content-length': String(n),
            'content-range': `bytes ${size - n}-${size - 1}/${size}`,
            'accept-ranges': 'bytes',
            ...(got.ETag ? { etag: got.ETag } : {}),
            ...(got.LastModified ? { 'last-modified': got.LastModified.toUTCString() } : {}),
          },
          body: got.Body as Readable,
        };
      } catch {
        // Not found or the like: the upstream's own answer (an error) is the right one.
      }
    }
    return new Promise((resolve, reject) => {
      const up = http.request(`${this.upstream}${req.url}`, { method: req.method, headers: { ...req.headers }, agent: false }, (ures) => {
        resolve({ status: ures.statusCode ?? 502, headers: ures.headers as Record<string, string | string[] | undefined>, body: ures });
      });
      up.on('error', reject);
      up.end(body);
    });
  }

  private async forward(action: Extract<Action, { kind: 'forward' | 'reset' | 'truncate' | 'stall' }>, entry: LogEntry,
    req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    const ures = await this.upstreamResponse(req, body);
    const etag = ures.headers.etag as string | undefined;
    entry.etag = etag;
    const status = ures.status;
    if ((this.opts.enforceIfMatch ?? true) && entry.ifMatch && etag && status < 300 && etag !== entry.ifMatch) {
      // What S3 does and s3rver does not.
      ures.body.destroy();
      const xml = Buffer.from(s3ErrorXml('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Match' }));
      entry.status = 412;
      entry.bytes = xml.length;
      res.writeHead(412, { 'content-type': 'application/xml', 'content-length': xml.length });
      res.end(xml);
      return;
    }
    const out: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(ures.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
    entry.status = status;
    res.writeHead(status, out);
    res.flushHeaders(); // the headers go out now, even if no body byte follows
    const src = ures.body;
    const limit = action.kind === 'forward' ? Infinity : action.afterBytes;
    const socket = req.socket;
    await new Promise<void>((resolve) => {
      let stopped = false;
      const stop = (): void => {
        stopped = true;
        src.pause();
        if (action.kind === 'reset') {
          this.later(20, () => {
            src.destroy();
            if (!socket.destroyed) socket.resetAndDestroy();
            resolve();
          });
        } else if (action.kind === 'truncate') {
          this.later(20, () => {
            src.destroy();
            socket.end();
            socket.destroySoon();
            resolve();
          });
        } else if (action.kind === 'stall') {
          socket.once('close', () => {
            src.destroy();
            resolve();
          });
          if (action.ms !== undefined) {
            this.later(action.ms, () => {
              if (socket.destroyed) return;
              src.on('data', (d: Buffer) => {
                entry.bytes += d.length;
                res.write(d);
              });
              src.on('end', () => res.end());
              src.resume();
            });
          }
        }
      };
      if (limit <= 0) stop();
      src.on('data', (d: Buffer) => {
        if (stopped) return;
        const room = limit - entry.bytes;
        if (d.length < room) {
          entry.bytes += d.length;
          res.write(d);
          return;
        }
        if (room > 0) res.write(d.subarray(0, room));
        entry.bytes += Math.max(0, room);
        const rest = d.subarray(Math.max(0, room));
        stop();
        // The stall's remainder, sent when it ends.
        if (action.kind === 'stall' && rest.length > 0) src.unshift(rest);
      });
      src.on('end', () => {
        if (!stopped) {
          res.end();
          resolve();
        }
      });
      src.on('error', () => resolve());
      socket.once('close', () => {
        src.destroy();
        resolve();
      });
    });
  }
}

interface Upstream {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

/** A port on loopback where nothing listens. */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface ReliabilityRow {
  case: string;
  expected: string;
  observed: string;
  test: string;
  /** How long the run took to reach its outcome. */
  ms: number;
}

/**
 * With RELIABILITY_REPORT=<path>, writes the rows a test file observed into that JSON list,
 * replacing the rows the same test file wrote before (several test files may share it).
 */
export function writeReliabilityReport(testFile: string, rows: ReliabilityRow[]): void {
  const path = process.env.RELIABILITY_REPORT;
  if (!path || rows.length === 0) return;
  const name = basename(testFile);
  let all: ReliabilityRow[] = [];
  if (existsSync(path)) {
    try {
      all = (JSON.parse(readFileSync(path, 'utf8')) as ReliabilityRow[]).filter((r) => !r.test.startsWith(`${name} `) && r.test !== name);
    } catch {
      all = [];
    }
  }
  writeFileSync(path, `${JSON.stringify([...all, ...rows], null, 2)}\n`);
}
