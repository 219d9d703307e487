/**
 * Running one measured process: wall time from spawn to exit (or, under bench/rusage-run.c,
 * what the kernel counted for it), and for the engine's run a
 * sampler over /proc that follows the helper (the wrapper's PID) and its init program.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

/** What the kernel counted for one run (bench/rusage-run.c: wait4's rusage, which covers the
 * descendants the command reaped: the wrapper's helper reaps the init program). */
export interface KernelUsage {
  wallMs: number;
  userMs: number;
  sysMs: number;
  minflt: number;
  majflt: number;
  nvcsw: number;
  nivcsw: number;
  maxrssKiB: number;
}

export interface Timed {
  code: number | null;
  signal: NodeJS.Signals | null;
  wallMs: number;
  stdout: string;
  stderr: string;
  /** The command's PID (under the runner: the command's, not the runner's). */
  pid: number;
  /** Set when the command ran under the runner. */
  kernel?: KernelUsage;
}

/** bench/rusage-run.c, built once per run of the harness; `cpus` pins the command (e.g. "0"). */
export interface Runner {
  path: string;
  cpus?: string;
}

export class RunnerError extends Error {
  readonly code = 'BENCH_RUNNER';
}

function parseKernel(report: string): KernelUsage | undefined {
  const line = report.trim().split('\n').find((l) => l.startsWith('{'));
  if (!line) return undefined;
  const o = JSON.parse(line);
  return {
    wallMs: o.wall_ms, userMs: o.user_ms, sysMs: o.sys_ms, minflt: o.minflt, majflt: o.majflt,
    nvcsw: o.nvcsw, nivcsw: o.nivcsw, maxrssKiB: o.maxrss_kib,
  };
}

/**
 * Spawns `cmd` and resolves when it exits; `onSpawn` sees the command's PID right after the
 * spawn. With `runner`, the command runs under bench/rusage-run.c (pinned to `runner.cpus`
 * when set): its report descriptor is a fourth pipe, `wallMs` is the runner's (fork to
 * wait4) and `kernel` holds what wait4 counted.
 */
export function timed(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string; onSpawn?: (pid: number) => void; timeoutMs?: number; runner?: Runner } = {}): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const runner = opts.runner;
    const argv = runner ? [...(runner.cpus ? ['--cpus', runner.cpus] : []), '--', cmd, ...args] : args;
    const child = spawn(runner ? runner.path : cmd, argv, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe', ...(runner ? ['pipe' as const] : [])] });
    let stdout = '';
    let stderr = '';
    let report = '';
    let commandPid = runner ? -1 : child.pid ?? -1;
    let wallMs = 0;
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    if (runner) {
      (child.stdio[3] as NodeJS.ReadableStream).on('data', (d) => {
        const first = report.indexOf('\n') < 0;
        report += d;
        const nl = report.indexOf('\n');
        if (first && nl >= 0) {
          commandPid = Number(report.slice(0, nl));
          opts.onSpawn?.(commandPid);
        }
      });
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'exit' is the moment the process ended; 'close' waits for its pipes as well.
    child.on('exit', () => (wallMs = performance.now() - t0));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (!runner) return resolve({ code, signal, wallMs, stdout, stderr, pid: commandPid });
      const kernel = parseKernel(report);
      if (!kernel) return reject(new RunnerError(`${runner.path} reported nothing for ${cmd} (exit ${code ?? signal}): ${stderr.trim().slice(-300)}; rebuild it with node bench/run.mjs`));
      resolve({ code, signal, wallMs: kernel.wallMs, stdout, stderr, pid: commandPid, kernel });
    });
    if (child.pid !== undefined && !runner) opts.onSpawn?.(child.pid);
  });
}

function statusKiB(pid: number, field: string): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(s);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function parentOf(pid: string): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ...; comm may hold spaces and parentheses.
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

function isInitProgram(pid: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').some((a) => a.endsWith('init.js'));
  } catch {
    return false;
  }
}

export interface EngineMemory {
  /** Peak RSS (VmHWM) of the init program, as last sampled before it exited. */
  initPeakKiB: number;
  /** Largest RSS of the helper process seen. */
  helperPeakKiB: number;
  /** Bytes in memfds held by the helper (sizes of its memfd descriptors), largest seen. */
  memfdBytes: number;
  memfds: number;
  /** Largest RssShmem of the init program (memfd pages it has mapped), KiB. */
  initShmemKiB: number;
  samples: number;
  /** Whether the init program was seen at all (a very short run may escape the sampler). */
  sawInit: boolean;
}

/**
 * Samples every `intervalMs` from the moment the helper's PID is known: the helper's VmRSS,
 * its memfd descriptors (a memfd's size is fixed when it is created, so each fd is stat'ed
 * once), and the init program's VmHWM. The init program is the helper's child: found by
 * scanning /proc for a process whose parent is the helper (this kernel may lack
 * /proc/<pid>/task/<tid>/children).
 */
export class EngineSampler {
  private timer: NodeJS.Timeout | null = null;
  private pid = -1;
  private child = -1;
  private fdSizes = new Map<string, number>();
  readonly mem: EngineMemory = { initPeakKiB: 0, helperPeakKiB: 0, memfdBytes: 0, memfds: 0, initShmemKiB: 0, samples: 0, sawInit: false };

  constructor(private readonly intervalMs = 20) {}

  start(pid: number): void {
    this.pid = pid;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  stop(): EngineMemory {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.mem;
  }

  private sample(): void {
    const m = this.mem;
    m.samples++;
    const rss = statusKiB(this.pid, 'VmRSS');
    if (rss !== null) m.helperPeakKiB = Math.max(m.helperPeakKiB, rss);
    if (this.child < 0) {
      // The wrapper (bash, the same PID before it execs the helper) forks subshells too:
      // the init program is the child running init.js.
      for (const name of readdirSync('/proc')) {
        if (name.charCodeAt(0) > 57 || parentOf(name) !== this.pid || !isInitProgram(name)) continue;
        this.child = Number(name);
        break;
      }
    }
    if (this.child > 0) {
      const hwm = statusKiB(this.child, 'VmHWM');
      if (hwm !== null) {
        m.initPeakKiB = Math.max(m.initPeakKiB, hwm);
        m.sawInit = true;
      }
      // Shared memory in its RSS (memfd pages it maps) would be counted twice in the total.
      const shmem = statusKiB(this.child, 'RssShmem');
      if (shmem !== null) m.initShmemKiB = Math.max(m.initShmemKiB, shmem);
    }
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${this.pid}/fd`);
    } catch {
      return;
    }
    for (const fd of fds) {
      if (this.fdSizes.has(fd)) continue;
      try {
        const link = readlinkSync(`/proc/${this.pid}/fd/${fd}`);
        if (!link.startsWith('/memfd:')) continue;
        this.fdSizes.set(fd, statSync(`/proc/${this.pid}/fd/${fd}`).size);
      } catch {
        continue;
      }
    }
    let total = 0;
    for (const s of this.fdSizes.values()) total += s;
    m.memfdBytes = Math.max(m.memfdBytes, total);
    m.memfds = Math.max(m.memfds, this.fdSizes.size);
  }
}
