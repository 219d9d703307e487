/**
 * A function under SnapStart's lifecycle, in the same sandbox as every other end-to-end test,
 * driven by our own Runtime API server (./runtime-api.ts says why not the emulator): init runs
 * at once, as at publish time; the runtime interface client runs the before-snapshot hooks and
 * waits in restore/next; the test may change the sandbox as a restore would find it, then
 * restores and invokes.
 */
import { spawn } from 'node:child_process';
import { ENTER, lambdaEnvironment, sandboxArgs, SandboxDirs, SandboxProcess, type FunctionConfig } from './lambda';
import { RuntimeApi, type Response, type RuntimeError } from './runtime-api';

export type RestoreOutcome = { restored: true; ms: number } | { restored: false; error: RuntimeError; exitCode: number | null };

export class SnapStartFunction extends SandboxProcess {
  private constructor(child: ReturnType<typeof spawn>, dirs: SandboxDirs, private readonly api: RuntimeApi) {
    super(child, dirs);
  }

  static async start(cfg: FunctionConfig): Promise<SnapStartFunction> {
    const api = await new RuntimeApi().listen();
    const dirs = new SandboxDirs(cfg.tmpSize);
    const env = { ...lambdaEnvironment({ ...cfg, snapStart: true }), AWS_LAMBDA_RUNTIME_API: api.address };
    const child = spawn(ENTER, [...sandboxArgs(cfg, dirs), '/var/runtime/bootstrap'], { env, cwd: cfg.task, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    return new SnapStartFunction(child, dirs, api);
  }

  /** The runtime's PID: the sandbox execs its way to the runtime, so it is the PID started. */
  get pid(): number {
    return this.child.pid!;
  }

  /** Where `path` inside the sandbox is, seen from the host (through the runtime's root). */
  hostPath(path: string): string {
    return `/proc/${this.pid}/root${path}`;
  }

  /** Resolves when init and the before-snapshot hooks are done (the runtime waits in restore/next). */
  async snapshotReady(): Promise<void> {
    const failed = Promise.race([
      this.exit().then((code) => `the runtime exited ${code} during init`),
      this.api.initError.promise.then((e) => `init failed: ${e.type}: ${e.body}`),
    ]).then((why) => {
      throw new Error(`${why}\n${this.log}`);
    });
    await Promise.race([this.api.snapshotReady(), failed]);
  }

  /** Restores: answers restore/next, then waits for the after-restore hooks to finish or fail. */
  async restore(): Promise<RestoreOutcome> {
    const ok = this.api.restore().then((ms): RestoreOutcome => ({ restored: true, ms }));
    const failed = this.api.restoreError.promise.then(async (error): Promise<RestoreOutcome> => ({ restored: false, error, exitCode: await this.exit() }));
    return Promise.race([ok, failed]);
  }

  invoke(event: unknown = {}): Promise<Response> {
    return this.api.invoke(event);
  }

  override async stop(): Promise<void> {
    await super.stop();
    await this.api.close();
  }
}
