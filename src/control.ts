/**
 * Client side of the helper's control socket (docs/architecture.md, "The control protocol").
 * Requests may be sent before earlier ones are answered: the helper answers each, in order,
 * so replies go to the requests waiting, first come first served. Replies are read with a
 * net.Socket (epoll), never an fs stream, which would pin a libuv pool thread and hang process exit.
 */
import { Socket } from 'node:net';
import { ProtocolError, SnaploaderError } from './errors';

const MAX_LINE = 8192;

export function percentEncode(value: string | Buffer): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  let out = '';
  for (const b of bytes) {
    out += b <= 0x20 || b === 0x25 || b >= 0x7f ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  }
  return out;
}

export class HelperClient {
  private readonly socket: Socket;
  private buffered = '';
  /** Requests sent and not answered yet, oldest first. */
  private readonly waiting: { resolve: (line: string) => void; reject: (err: Error) => void }[] = [];
  private closedError: Error | null = null;
  readonly helperPid: number;

  private constructor(fd: number, helperPid: number) {
    this.helperPid = helperPid;
    this.socket = new Socket({ fd, readable: true, writable: true });
    this.socket.setEncoding('latin1');
    this.socket.on('data', (chunk: string) => this.onData(chunk));
    const onClose = (err?: Error): void => {
      this.closedError = new ProtocolError(`control socket closed by the helper${err ? `: ${err.message}` : ''}`);
      this.failWaiting(this.closedError);
    };
    this.socket.on('error', onClose);
    this.socket.on('end', () => onClose());
  }

  static fromEnv(env: Record<string, string | undefined>): HelperClient {
    const fd = env.SNAPLOADER_CONTROL_FD;
    const pid = env.SNAPLOADER_HELPER_PID;
    if (!fd || !/^\d+$/.test(fd) || !pid || !/^\d+$/.test(pid)) throw new SnaploaderError('NOT_UNDER_HELPER', 'the init program must be started by snaploader-helper ' +
        '(through wrapper.sh): set AWS_LAMBDA_EXEC_WRAPPER=/opt/snaploader/wrapper.sh rather than running init.js directly');
    return new HelperClient(Number(fd), Number(pid));
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    if (this.buffered.length > MAX_LINE && !this.buffered.includes('\n')) {
      this.failWaiting(new ProtocolError('helper sent an over-long line'));
      return;
    }
    for (let nl = this.buffered.indexOf('\n'); nl >= 0 && this.waiting.length > 0; nl = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      this.waiting.shift()!.resolve(line);
    }
  }

  private failWaiting(err: Error): void {
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  private request(line: string): Promise<string> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise<string>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.socket.write(`${line}\n`);
    }).then((reply) => {
      if (reply === 'OK' || reply.startsWith('OK ')) return reply.slice(3);
      if (reply.startsWith('ERR ')) throw new ProtocolError(`helper refused "${line.split(' ')[0]}": ${decodeURIComponentSafe(reply.slice(4))}`);
      throw new ProtocolError(`unexpected reply from helper: ${JSON.stringify(reply.slice(0, 200))}`);
    });
  }

  /** Creates a memfd of `size` bytes in the helper; returns its fd number there. */
  async memfd(size: number, name: string): Promise<number> {
    const reply = await this.request(`MEMFD ${size} ${percentEncode(name)}`);
    if (!/^\d+$/.test(reply)) throw new ProtocolError(`helper answered MEMFD with ${JSON.stringify(reply)}`);
    return Number(reply);
  }

  async setenv(name: string, value: string): Promise<void> {
    await this.request(`SETENV ${name} ${percentEncode(value)}`);
  }

  async error(message: string): Promise<void> {
    // Encoded, a byte can take three; stay well inside the helper's line limit.
    const short = message.length > 2000 ? `${message.slice(0, 2000)}…` : message;
    await this.request(`ERROR ${percentEncode(short)}`);
  }

  async done(): Promise<void> {
    await this.request('DONE');
  }

  /** The path through which this process writes into the helper's fd. */
  fdPath(fd: number): string {
    return `/proc/${this.helperPid}/fd/${fd}`;
  }

  close(): void {
    this.socket.destroy();
  }
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
