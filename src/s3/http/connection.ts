/**
 * One keep-alive HTTP/1.1 connection (TCP or TLS) that reads into memory of its own.
 *
 * The socket reads straight into a slab (`onread`, slabs.ts), and a response's body is handed
 * on as views of it: no Buffer per read from the socket, no copy per body chunk by Node's HTTP
 * parser. A full slab is left for the next one; it is written again only once every view of
 * it has been given back (slabs.ts).
 */
import net from 'node:net';
import { Readable } from 'node:stream';
import type * as Tls from 'node:tls';
import { lend, retire, SLAB_SIZE, takeSlab } from '../../slabs';
import { connectionReset, HttpParseError, ResponseParser, type ResponseHead } from './response-parser';

/** A slab with less room than this left is replaced before the next read (a read never spans two). */
const MIN_READ = 16 * 1024;
/**
 * Over TLS, body bytes that follow each other in a slab are handed on as one view once this
 * many have come, or once the event loop's turn has delivered every read it has. TLS hands each
 * 16 KiB record over as a read of its own, and every view handed on costs the same work
 * downstream whatever its size. (A TCP read is already as large as what the kernel had: it is
 * handed on at once.)
 */
const HAND_ON = 128 * 1024;

/**
 * node:tls, loaded by the first TLS connection. Loading it starts a thread that parses Node's
 * ~150 bundled root certificates (about 20 ms of CPU here): a plain-HTTP endpoint never pays
 * for it, and the init program's entry loads it early when the endpoint is HTTPS (entry.ts).
 */
let tlsModule: typeof Tls | null = null;
function tls(): typeof Tls {
  return (tlsModule ??= require('node:tls') as typeof Tls);
}

export interface Origin {
  protocol: 'http:' | 'https:';
  host: string;
  port: number;
}

export interface ConnectionOptions {
  connectTimeoutMs: number;
  /** Certificate authorities to trust instead of Node's (PEM). Default: Node's, `NODE_EXTRA_CA_CERTS` included. */
  ca?: string;
  /** A TLS session to resume, and where a new one is told. */
  session?: Buffer;
  onSession?: (s: Buffer) => void;
}

export function originKey(o: Origin): string {
  return `${o.protocol}//${o.host}:${o.port}`;
}

/** A response body: a Readable (what the SDK expects), fed by the connection, paused by backpressure. */
export class ResponseBody extends Readable {
  private failure: Error | null = null;

  /** `wanted`: the consumer wants more; `onDestroy`: the body is destroyed (or read to its end). */
  constructor(private readonly wanted: () => void, private readonly onDestroy: () => void) {
    super();
  }

  /** The connection broke: the bytes already received are still read, then the body fails with `err`. */
  fail(err: Error): void {
    if (this.readableLength === 0) this.destroy(err);
    else this.failure = err;
  }

  override _read(): void {
    if (this.failure === null) this.wanted();
    else if (this.readableLength === 0) this.destroy(this.failure);
    // Bytes still buffered: an empty push lets the stream ask again once they are read.
    else this.push(Buffer.alloc(0));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.onDestroy();
    cb(err);
  }
}

interface Exchange {
  parser: ResponseParser;
  body: ResponseBody | null;
  onHead: (head: ResponseHead, body: ResponseBody) => void;
  onError: (err: Error) => void;
}

export class Connection {
  readonly socket: net.Socket;
  /** Settles when the connection is made (TLS: the handshake is done). */
  readonly ready: Promise<void>;
  private slab = takeSlab();
  private used = 0;
  private exchange: Exchange | null = null;
  private closed = false;
  private closeReason: Error | null = null;
  /** Reading is stopped (or, after a deferred hand-on, stops at the next read) until the body's consumer asks for more. */
  private stopped = false;
  /** Body bytes read into the slab, [start, end), not handed on yet. */
  private held: { body: ResponseBody; start: number; end: number } | null = null;
  private handOnScheduled = false;
  private readonly joinReads: boolean;
  /** Called when a response is read to its end and the connection may take another request. */
  onIdle: ((conn: Connection) => void) | null = null;
  /** Called once when the connection is closed, for whatever reason. */
  onClose: ((conn: Connection) => void) | null = null;

  constructor(origin: Origin, { connectTimeoutMs, ca, session, onSession }: ConnectionOptions) {
    const onread = { buffer: () => this.nextBuffer(), callback: (n: number, buf: Uint8Array) => this.onRead(n, buf) };
    const host = origin.host.replace(/^\[(.*)\]$/, '$1');
    // tls.connect takes onread too (documented; missing from @types/node 20).
    const secure: Tls.ConnectionOptions & { onread: typeof onread } = {
      host, port: origin.port, servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'], session, onread, ...(ca === undefined ? {} : { ca }),
    };
    this.socket = origin.protocol === 'https:' ? tls().connect(secure) : net.connect({ host, port: origin.port, onread });
    this.joinReads = origin.protocol === 'https:';
    if (onSession) this.socket.on('session', onSession);
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true, 1000);
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('end', () => this.ended());
    this.socket.on('close', () => this.close(null));
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = Object.assign(new Error(`Socket timed out without establishing a connection within ${connectTimeoutMs} ms`), { name: 'TimeoutError' });
        this.destroy(err);
      }, connectTimeoutMs);
      this.socket.once(origin.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.once('close', () => {
        clearTimeout(timer);
        reject(this.closeReason ?? connectionReset('socket hang up'));
      });
    });
    this.ready.catch(() => undefined);
  }

  get usable(): boolean {
    return !this.closed && this.exchange === null;
  }

  /** Sends one request; `onHead` gets the response head and its body, `onError` anything before it or after. */
  send(request: Buffer, onHead: Exchange['onHead'], onError: Exchange['onError']): void {
    if (this.closed) {
      onError(this.closeReason ?? connectionReset('socket hang up'));
      return;
    }
    this.exchange = { parser: new ResponseParser(), body: null, onHead, onError };
    this.socket.ref();
    this.socket.write(request);
  }

  /** The consumer wants more: read again if backpressure had stopped reading. */
  private resumeReading(): void {
    if (this.closed || !this.stopped) return;
    this.stopped = false;
    // Node stops a socket whose onread callback returns false; its own _read starts it again.
    this.socket._read(0);
  }

  /** A body was destroyed: a response not read to its end leaves the connection unusable. */
  private bodyClosed(ex: Exchange): void {
    if (this.exchange === ex && !ex.parser.done) this.destroy();
  }

  destroy(err?: Error): void {
    if (err) this.closeReason ??= err;
    this.socket.destroy();
    this.close(null);
  }

  /** Where the socket's next read goes (Node asks after each read, so the slab left is read into no more). */
  private nextBuffer(): Buffer {
    if (SLAB_SIZE - this.used < MIN_READ) {
      this.handOn(); // never left to do here (onRead did it): a view must be lent before its slab is retired
      retire(this.slab);
      this.slab = takeSlab();
      this.used = 0;
    }
    return this.slab.buf.subarray(this.used);
  }

  private onRead(n: number, buf: Uint8Array): boolean {
    const bytes = Buffer.from(buf.buffer, buf.byteOffset, n);
    this.used += n;
    const ex = this.exchange;
    if (!ex) {
      // Bytes on an idle connection: the server is not speaking HTTP as we do. Not used again.
      this.destroy();
      return false;
    }
    let more = !this.stopped;
    try {
      const rest = ex.parser.push(bytes, (view) => {
        // Body bytes come only after the head: the body exists from the first of them on.
        const body = ex.body ?? this.deliverHead(ex);
        if (view.length > 0 && !this.hold(body, view)) more = false;
      });
      if (ex.body === null && ex.parser.head !== null) this.deliverHead(ex);
      if (rest !== null) throw new HttpParseError('the server sent more than one response');
      if (ex.parser.done) {
        // Backpressure is the body's; an idle connection keeps reading (to see the server close it).
        this.complete(ex);
        return true;
      }
    } catch (err) {
      this.fail(err as Error);
      return false;
    }
    // Handed on now, unless more reads of this turn of the event loop may follow it (TLS, see
    // HAND_ON) and the slab is not about to be left.
    const h = this.held;
    if (h !== null && (!this.joinReads || h.end - h.start >= HAND_ON || SLAB_SIZE - this.used < MIN_READ)) {
      if (!this.handOn()) more = false;
    } else if (h !== null && !this.handOnScheduled) {
      this.handOnScheduled = true;
      setImmediate(this.handOnLater);
    }
    if (!more) this.stopped = true;
    return more;
  }

  /** Body bytes read: held to join the next ones if they follow in the slab; false if the body wants no more. */
  private hold(body: ResponseBody, view: Buffer): boolean {
    const h = this.held;
    if (h !== null && h.body === body && view.buffer === this.slab.buf.buffer && view.byteOffset === h.end) {
      h.end += view.length;
      return true;
    }
    const more = this.handOn();
    if (view.buffer !== this.slab.buf.buffer) return body.push(view) && more; // a copy the parser made
    this.held = { body, start: view.byteOffset, end: view.byteOffset + view.length };
    return more;
  }

  /** Hands the held bytes on as one view; false if the body wants no more for now. */
  private handOn(): boolean {
    const h = this.held;
    if (h === null) return true;
    this.held = null;
    const view = Buffer.from(this.slab.buf.buffer, h.start, h.end - h.start);
    lend(this.slab, view);
    return h.body.push(view);
  }

  private readonly handOnLater = (): void => {
    this.handOnScheduled = false;
    // A body that wants no more stops the socket at its next read (at most one more read's worth).
    if (!this.handOn()) this.stopped = true;
  };

  private deliverHead(ex: Exchange): ResponseBody {
    const body = new ResponseBody(() => this.exchange === ex && this.resumeReading(), () => this.bodyClosed(ex));
    ex.body = body;
    ex.onHead(ex.parser.head!, body);
    return body;
  }

  /** The whole response is read: the body ends, and the connection goes back to its pool if it may. */
  private complete(ex: Exchange): void {
    if (ex.body === null) this.deliverHead(ex);
    this.handOn();
    this.exchange = null;
    // Reading again, for the next response and to see the server close: over TLS one socket
    // read is several records, each a call of onRead, and Node stops the socket at the first
    // that returns false even when a later one completes the response.
    this.stopped = false;
    this.socket._read(0);
    ex.body!.push(null);
    if (!ex.parser.keepAlive) {
      this.destroy();
      return;
    }
    this.socket.unref();
    this.onIdle?.(this);
  }

  /** The server closed its side: a body framed by the connection's end is complete; anything else was cut short. */
  private ended(): void {
    const ex = this.exchange;
    if (!ex) return;
    try {
      ex.parser.end();
      this.complete(ex);
    } catch (err) {
      this.fail(err as Error);
    }
  }

  private fail(err: Error): void {
    this.closeReason ??= err;
    this.handOn(); // the bytes that came are delivered before the failure
    const ex = this.exchange;
    this.exchange = null;
    if (ex) {
      if (ex.body) ex.body.fail(err);
      else ex.onError(err);
    }
    this.destroy(err);
  }

  private close(err: Error | null): void {
    if (err) this.closeReason ??= err;
    if (this.closed) return;
    this.closed = true;
    this.handOn();
    retire(this.slab);
    const ex = this.exchange;
    this.exchange = null;
    if (ex) {
      const why = this.closeReason ?? connectionReset(ex.body ? 'aborted' : 'socket hang up');
      if (ex.body) ex.body.fail(why);
      else ex.onError(why);
    }
    this.onClose?.(this);
  }
}
