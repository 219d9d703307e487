/**
 * The Lambda sandbox the end-to-end tests run functions in: the real AWS Lambda Runtime
 * Interface Emulator, invoked over HTTP, starting the managed runtime's bootstrap inside a
 * private mount namespace with Lambda's rules (sandbox/enter.sh; docs/testing.md): the function
 * at /var/task and the layers at /opt, read-only; a fresh 512 MB /tmp; no /dev/shm; a
 * read-only root; an unprivileged user; 1,024 file descriptors; Lambda's environment.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE_OPT, OPT, ROOT } from './paths';
import { ensureRie } from './runtime-deps';
import { PYTHON } from './runtimes/python';
import type { SandboxRuntime } from './runtimes/runtime';

export const ENTER = join(ROOT, 'test', 'support', 'sandbox', 'enter.sh');

/** Lambda's default LD_LIBRARY_PATH (aws-lambda-base-images). */
export const LAMBDA_LD_LIBRARY_PATH = '/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib';

export interface FunctionConfig {
  /** The managed runtime; default Python (runtimes/python.ts). */
  runtime?: SandboxRuntime;
  /** `module.function`, as `_HANDLER`. */
  handler: string;
  /** The host directory that becomes /var/task. */
  task: string;
  /** Host directories merged into /opt in order (later wins); default: the runtime's (the built core and Node layers, as a Python function attaches them). */
  layers?: string[];
  /** The function's own environment variables (its configuration). */
  env?: Record<string, string>;
  /** AWS_LAMBDA_FUNCTION_MEMORY_SIZE; default 1024. */
  memoryMb?: number;
  /** AWS_LAMBDA_INITIALIZATION_TYPE=snap-start (SnapStartFunction sets it). */
  snapStart?: boolean;
  /** Host paths masked inside the sandbox (a test proves a library came from the archive), beside what the runtime masks. */
  hide?: string[];
  /** The runtime's uid (default 993, Lambda's sbx_user1051) and whether /etc/passwd names it. */
  uid?: number;
  noPasswdEntry?: boolean;
  /** Size of /tmp; default 512m. */
  tmpSize?: string;
}

export interface InvokeResult {
  /** The emulator's HTTP status: 200 for a handled invoke, 502 when the runtime failed. */
  status: number;
  body: string;
}

/** The JSON an invoke returned (the handler's value, or Lambda's error object). */
export function json(r: InvokeResult): Record<string, unknown> {
  try {
    return JSON.parse(r.body);
  } catch {
    throw new Error(`invoke returned ${r.status} and a body that is not JSON: ${r.body}`);
  }
}

/** `n` distinct ports that were free a moment ago (held together, so they differ). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<Server>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  })));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** The Lambda environment for `cfg`, as the runtime's bootstrap receives it (the emulator adds AWS_LAMBDA_RUNTIME_API). */
export function lambdaEnvironment(cfg: FunctionConfig): Record<string, string> {
  return {
    PATH: '/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    LD_LIBRARY_PATH: LAMBDA_LD_LIBRARY_PATH,
    LAMBDA_TASK_ROOT: '/var/task',
    LAMBDA_RUNTIME_DIR: '/var/runtime',
    AWS_EXECUTION_ENV: (cfg.runtime ?? PYTHON).executionEnv(),
    AWS_LAMBDA_FUNCTION_NAME: 'snaploader-test',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(cfg.memoryMb ?? 1024),
    AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/snaploader-test',
    AWS_LAMBDA_LOG_STREAM_NAME: '2026/01/01/[$LATEST]0123456789abcdef',
    AWS_LAMBDA_INITIALIZATION_TYPE: cfg.snapStart ? 'snap-start' : 'on-demand',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    _HANDLER: cfg.handler,
    ...(cfg.runtime ?? PYTHON).environment(),
    ...cfg.env,
  };
}

/**
 * The host directories one sandbox uses: `root`, where its new root is built (in its own mount
 * namespace), and `tmp`, a tmpfs mounted here in the host's namespace and bound at /tmp inside,
 * so that a test can look at what the function left in /tmp after it has gone.
 */
export class SandboxDirs {
  readonly dir = mkdtempSync(join(tmpdir(), 'snaploader-sandbox-'));
  readonly root = join(this.dir, 'root');
  readonly tmp = join(this.dir, 'tmp');

  constructor(tmpSize = '512m') {
    mkdirSync(this.root);
    mkdirSync(this.tmp);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `mode=1777,size=${tmpSize}`, 'sandbox-tmp', this.tmp]);
  }

  remove(): void {
    try {
      execFileSync('umount', ['--lazy', this.tmp], { stdio: 'ignore' });
    } catch {
      /* not mounted */
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** enter.sh's arguments for `cfg`, up to and including `--`. */
export function sandboxArgs(cfg: FunctionConfig, dirs: SandboxDirs): string[] {
  const runtime = cfg.runtime ?? PYTHON;
  return [
    '--root', dirs.root, '--tmp', dirs.tmp, '--task', cfg.task,
    ...runtime.runtimeDirs().flatMap((d) => ['--runtime', d]),
    ...Object.entries(runtime.langLinks()).flatMap(([name, target]) => ['--lang-link', `${name}=${target}`]),
    ...(cfg.layers ?? runtime.defaultLayers?.() ?? [OPT, NODE_OPT]).flatMap((l) => ['--layer', l]),
    ...[...runtime.hidden(), ...(cfg.hide ?? [])].flatMap((h) => ['--hide', h]),
    ...(cfg.uid !== undefined ? ['--uid', String(cfg.uid)] : []),
    ...(cfg.noPasswdEntry ? ['--no-passwd-entry'] : []),
    '--',
  ];
}

// The emulator's own lines: logrus ("01 Dec 2026 10:00:00,123 [INFO] (rapid) ...") and its invoke reports.
const EMULATOR_LINE = /^(\d\d \w{3} \d{4} [\d:,]+ \[[A-Z]+\] |(START|END|REPORT) RequestId: )/;

/** A process tree that runs a function in the sandbox, with everything it printed. */
export class SandboxProcess {
  protected output = '';
  private readonly exited: Promise<number | null>;

  protected constructor(protected readonly child: ChildProcess, private readonly dirs: SandboxDirs) {
    child.stdout!.on('data', (d) => (this.output += d));
    child.stderr!.on('data', (d) => (this.output += d));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** Where `path` under the sandbox's /tmp is on the host: readable during and after the function's life, until stop(). */
  tmpPath(path: string): string {
    return join(this.dirs.tmp, path.replace(/^\/tmp\/?/, ''));
  }

  /** Resolves with the exit code when the process the sandbox was started with exits. */
  exit(): Promise<number | null> {
    return this.exited;
  }

  /** Everything printed: the function's stdout and stderr (and the emulator's own lines, if any). */
  get log(): string {
    return this.output;
  }

  /** The function's own log lines (wrapper, helper, init program, runtime, handler), without the emulator's. */
  functionLog(): string[] {
    return this.output.split('\n').filter((l) => l.trim() !== '' && !EMULATOR_LINE.test(l));
  }

  /** The lines of the function's log that snaploader wrote. */
  snaploaderLog(): string[] {
    return this.functionLog().filter((l) => l.startsWith('snaploader'));
  }

  /** Stops everything it started; the sandbox's mounts go with its last process. */
  async stop(): Promise<void> {
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await this.exited;
    this.dirs.remove();
  }
}

/** A function running in the sandbox under its own emulator: init happens at the first invoke. */
export class LambdaFunction extends SandboxProcess {
  private constructor(child: ChildProcess, private readonly port: number, dirs: SandboxDirs) {
    super(child, dirs);
  }

  /** Starts the emulator for `cfg` (a port taken meanwhile by another process is retried). */
  static async start(cfg: FunctionConfig): Promise<LambdaFunction> {
    for (let attempt = 1; ; attempt++) {
      const fn = LambdaFunction.spawn(cfg, await freePorts(2));
      try {
        await fn.listening();
        return fn;
      } catch (err) {
        await fn.stop();
        if (attempt === 3 || !/address already in use/.test(fn.log)) throw err;
      }
    }
  }

  private static spawn(cfg: FunctionConfig, [port, apiPort]: number[]): LambdaFunction {
    const rie = ensureRie();
    const dirs = new SandboxDirs(cfg.tmpSize);
    const args = [
      '--runtime-interface-emulator-address', `127.0.0.1:${port}`,
      '--runtime-api-address', `127.0.0.1:${apiPort}`,
      ENTER, ...sandboxArgs(cfg, dirs),
      // The emulator takes its last argument as the handler and sets _HANDLER from it.
      '/var/runtime/bootstrap', cfg.handler,
    ];
    const child = spawn(rie, args, { env: lambdaEnvironment(cfg), cwd: cfg.task, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    return new LambdaFunction(child, port, dirs);
  }

  private async listening(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (this.child.exitCode !== null) throw new Error(`the emulator exited ${this.child.exitCode}:\n${this.output}`);
      const ok = await fetch(`http://127.0.0.1:${this.port}/`).then(() => true, () => false);
      if (ok) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`the emulator did not listen on ${this.port}:\n${this.output}`);
  }

  /** Invokes the function with `event` (the first invoke runs the init). */
  async invoke(event: unknown = {}): Promise<InvokeResult> {
    const res = await fetch(`http://127.0.0.1:${this.port}/2015-03-31/functions/function/invocations`, {
      method: 'POST',
      body: JSON.stringify(event),
      signal: AbortSignal.timeout(120000),
    });
    return { status: res.status, body: await res.text() };
  }

  /** The PID of the process the emulator started as the bootstrap (the runtime keeps it). */
  bootstrapPid(): number | undefined {
    const pid = this.child.pid!;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (children) return Number(children.split(' ')[0]);
    }
    return undefined;
  }
}

/** Starts a function, runs `body` with it, and always stops it. */
export async function withFunction<T>(cfg: FunctionConfig, body: (fn: LambdaFunction) => Promise<T>): Promise<T> {
  const fn = await LambdaFunction.start(cfg);
  try {
    return await body(fn);
  } finally {
    await fn.stop();
  }
}
