/**
 * One HTTP/1.1 response, parsed incrementally from the bytes a connection reads: the head,
 * then the body as views of those same bytes (never copied), framed as RFC 9112 says: no body
 * (1xx skipped, 204, 304), chunked coding, Content-Length, or the connection's end.
 */

/** A response that is not HTTP/1.1 as we read it: the connection is not used again. */
export class HttpParseError extends Error {
  readonly code = 'HPE_INVALID';

  constructor(detail: string) {
    super(`Parse Error: ${detail}`);
    this.name = 'HttpParseError';
  }
}

/** A connection that ended before its response did, named as Node's HTTP client names it. */
export function connectionReset(message: 'socket hang up' | 'aborted'): Error {
  return Object.assign(new Error(message), { code: 'ECONNRESET' });
}

export interface ResponseHead {
  statusCode: number;
  reason: string;
  /** Lower-case names; repeated fields joined with ", ". */
  headers: Record<string, string>;
}

/** A head larger than this is refused (S3's are about 1 KiB). */
const MAX_HEAD = 64 * 1024;
/** A chunk-size line or trailer line longer than this is refused. */
const MAX_LINE = 4096;

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

type Framing =
  | { kind: 'none' }
  | { kind: 'length'; left: number }
  | { kind: 'close' }
  | { kind: 'chunked'; state: 'size' | 'data' | 'data-end' | 'trailer'; left: number; line: Buffer };

export class ResponseParser {
  head: ResponseHead | null = null;
  /** The whole message has been read (its body ends with the connection for 'close' framing). */
  done = false;
  /** The message allows the connection to be used for another request. */
  keepAlive = true;
  private pending: Buffer | null = null;
  private framing: Framing = { kind: 'none' };

  /**
   * Takes the next bytes read; body bytes go to `onBody` as views of `bytes`. Returns what
   * follows the message in `bytes` (nothing, for a server that does not pipeline).
   */
  push(bytes: Buffer, onBody: (view: Buffer) => void): Buffer | null {
    let rest: Buffer | null = bytes;
    while (rest !== null && rest.length > 0 && !this.done) {
      rest = this.head === null ? this.readHead(rest) : this.readBody(rest, onBody);
    }
    return rest !== null && rest.length > 0 ? rest : null;
  }

  /** The connection ended: completes a body framed by it, or says what was cut short. */
  end(): void {
    if (this.done) return;
    if (this.head !== null && this.framing.kind === 'close') {
      this.done = true;
      return;
    }
    throw connectionReset(this.head === null ? 'socket hang up' : 'aborted');
  }

  private readHead(bytes: Buffer): Buffer | null {
    const data = this.pending ? Buffer.concat([this.pending, bytes]) : bytes;
    const at = data.indexOf(HEAD_END);
    if (at < 0) {
      if (data.length > MAX_HEAD) throw new HttpParseError(`response head larger than ${MAX_HEAD} bytes`);
      // Kept as a copy: a caller may reuse the memory behind `bytes`.
      this.pending = Buffer.from(data);
      return null;
    }
    this.pending = null;
    const head = parseHead(data.toString('latin1', 0, at));
    const rest = data.subarray(at + HEAD_END.length);
    if (head.statusCode >= 100 && head.statusCode < 200) return rest; // 100 Continue and the like: the real head follows
    this.head = head;
    this.framing = framingOf(head);
    const connection = (head.headers.connection ?? '').toLowerCase();
    this.keepAlive = this.framing.kind !== 'close' && !/(^|,)\s*close\s*(,|$)/.test(connection);
    if (this.framing.kind === 'none' || (this.framing.kind === 'length' && this.framing.left === 0)) this.done = true;
    return rest;
  }

  private readBody(bytes: Buffer, onBody: (view: Buffer) => void): Buffer | null {
    const f = this.framing;
    if (f.kind === 'close') {
      onBody(bytes);
      return null;
    }
    if (f.kind === 'length') {
      const n = Math.min(f.left, bytes.length);
      onBody(bytes.subarray(0, n));
      f.left -= n;
      if (f.left === 0) this.done = true;
      return bytes.subarray(n);
    }
    if (f.kind === 'chunked') return this.readChunked(f, bytes, onBody);
    return bytes;
  }

  private readChunked(f: Extract<Framing, { kind: 'chunked' }>, bytes: Buffer, onBody: (view: Buffer) => void): Buffer {
    if (f.state === 'data') {
      const n = Math.min(f.left, bytes.length);
      onBody(bytes.subarray(0, n));
      f.left -= n;
      if (f.left === 0) f.state = 'data-end';
      return bytes.subarray(n);
    }
    // A line: a chunk size, the CRLF after a chunk's data, or a trailer field.
    const data = f.line.length > 0 ? Buffer.concat([f.line, bytes]) : bytes;
    const eol = data.indexOf(CRLF);
    if (eol < 0) {
      if (data.length > MAX_LINE) throw new HttpParseError('chunked body line too long');
      f.line = Buffer.from(data);
      return Buffer.alloc(0);
    }
    f.line = Buffer.alloc(0);
    const line = data.toString('latin1', 0, eol);
    const rest = data.subarray(eol + CRLF.length);
    if (f.state === 'data-end') {
      if (line !== '') throw new HttpParseError('chunk data longer than its size');
      f.state = 'size';
    } else if (f.state === 'size') {
      const size = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(line);
      if (!size) throw new HttpParseError(`invalid chunk size line "${line.slice(0, 40)}"`);
      f.left = parseInt(size[1], 16);
      f.state = f.left === 0 ? 'trailer' : 'data';
    } else if (line === '') {
      this.done = true;
    }
    return rest;
  }
}

function parseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!status) throw new HttpParseError(`invalid status line "${lines[0].slice(0, 60)}"`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0 || /[\s]/.test(line.slice(0, colon))) throw new HttpParseError(`invalid header line "${line.slice(0, 60)}"`);
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { statusCode: Number(status[1]), reason: status[2] ?? '', headers };
}

function framingOf(head: ResponseHead): Framing {
  if (head.statusCode === 204 || head.statusCode === 304) return { kind: 'none' };
  const te = head.headers['transfer-encoding'];
  if (te !== undefined) {
    if (/(^|,)\s*chunked\s*$/i.test(te)) return { kind: 'chunked', state: 'size', left: 0, line: Buffer.alloc(0) };
    return { kind: 'close' };
  }
  const cl = head.headers['content-length'];
  if (cl !== undefined) {
    if (!/^\d{1,15}$/.test(cl)) throw new HttpParseError(`invalid Content-Length "${cl.slice(0, 40)}"`);
    return { kind: 'length', left: Number(cl) };
  }
  return { kind: 'close' };
}
