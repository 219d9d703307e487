/**
 * A Runtime API server of our own, for the one lifecycle the emulator cannot drive: SnapStart.
 *
 * The emulator serves `GET /runtime/restore/next` in its init-caching mode, but nothing in it
 * ever restores: its first invoke releases the waiting runtime with the invoke's event as the
 * restore response, the runtime interface client then asks for the next invocation, and the
 * invoke hangs (docs/testing.md). This server implements the documented endpoints
 * (aws-lambda-runtime-interface-emulator internal/lambda/rapi/router.go) and lets a test
 * decide when the "snapshot" is taken and when the function is restored.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

const PREFIX = '/2018-06-01/runtime';

export interface RuntimeError {
  /** Lambda-Runtime-Function-Error-Type, e.g. Runtime.AfterRestoreError. */
  type: string;
  body: string;
}

export interface Response {
  status: 'success' | 'error';
  body: string;
  errorType?: string;
}

interface Pending {
  id: string;
  event: string;
  settle(r: Response): void;
}

function deferred<T>(): { promise: Promise<T>; resolve(v: T): void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

/** The Runtime API as one function's runtime sees it: init, restore, then invocations one at a time. */
export class RuntimeApi {
  private server: Server;
  private queue: Pending[] = [];
  private inFlight = new Map<string, Pending>();
  private waitingNext: ServerResponse | null = null;
  private restoreWaiter: ServerResponse | null = null;
  private readonly restoreNextCalled = deferred<void>();
  private readonly firstNext = deferred<number>();
  readonly initError = deferred<RuntimeError>();
  readonly restoreError = deferred<RuntimeError>();
  address = '';

  constructor() {
    this.server = createServer((req, res) => void this.route(req, res).catch((err) => {
      res.writeHead(500).end(String(err));
    }));
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.address = `127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }

  /** Resolves when the runtime calls restore/next: its init and before-snapshot hooks are done. */
  snapshotReady(): Promise<void> {
    return this.restoreNextCalled.promise;
  }

  /** Answers restore/next (the function "is restored"); resolves with the time until the runtime asks for its first invocation (after-restore hooks done). */
  restore(): Promise<number> {
    if (!this.restoreWaiter) throw new Error('the runtime is not waiting in restore/next');
    const start = performance.now();
    this.restoreWaiter.writeHead(200).end();
    this.restoreWaiter = null;
    return this.firstNext.promise.then((at) => at - start);
  }

  /** Queues an invocation; resolves with what the runtime posted for it. */
  invoke(event: unknown): Promise<Response> {
    return new Promise((settle) => {
      this.queue.push({ id: randomUUID(), event: JSON.stringify(event), settle });
      this.dispatch();
    });
  }

  private dispatch(): void {
    if (!this.waitingNext || this.queue.length === 0) return;
    const next = this.queue.shift()!;
    this.inFlight.set(next.id, next);
    this.waitingNext.writeHead(200, {
      'Content-Type': 'application/json',
      'Lambda-Runtime-Aws-Request-Id': next.id,
      'Lambda-Runtime-Deadline-Ms': String(Date.now() + 60000),
      'Lambda-Runtime-Invoked-Function-Arn': 'arn:aws:lambda:us-east-1:012345678912:function:snaploader-test',
      'Lambda-Runtime-Trace-Id': `Root=1-00000000-${'0'.repeat(24)};Parent=${'0'.repeat(16)};Sampled=0`,
    }).end(next.event);
    this.waitingNext = null;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '';
    const body = await readBody(req);
    const errorType = String(req.headers['lambda-runtime-function-error-type'] ?? 'Unknown');
    let m: RegExpMatchArray | null;
    if (req.method === 'GET' && url === `${PREFIX}/invocation/next`) {
      this.firstNext.resolve(performance.now());
      this.waitingNext = res;
      this.dispatch();
    } else if (req.method === 'GET' && url === `${PREFIX}/restore/next`) {
      this.restoreWaiter = res;
      this.restoreNextCalled.resolve();
    } else if (req.method === 'POST' && (m = url.match(/^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/))) {
      const pending = this.inFlight.get(m[1]);
      if (!pending) return void res.writeHead(400).end('unknown request id');
      this.inFlight.delete(m[1]);
      pending.settle(m[2] === 'response' ? { status: 'success', body } : { status: 'error', body, errorType });
      res.writeHead(202).end('{"status":"OK"}');
    } else if (req.method === 'POST' && url === `${PREFIX}/init/error`) {
      this.initError.resolve({ type: errorType, body });
      res.writeHead(202).end('{"status":"OK"}');
    } else if (req.method === 'POST' && url === `${PREFIX}/restore/error`) {
      this.restoreError.resolve({ type: errorType, body });
      res.writeHead(202).end('{"status":"OK"}');
    } else {
      res.writeHead(404).end(`no route ${req.method} ${url}`);
    }
  }

  async close(): Promise<void> {
    this.waitingNext?.destroy();
    this.restoreWaiter?.destroy();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}
