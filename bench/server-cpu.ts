/**
 * The local S3 server's and the shaping proxy's CPU during a run (utime + stime from
 * /proc/<pid>/stat, every thread of the process), and pinning the S3 server to other CPUs
 * for the 1-core runs (`taskset -a -p`), restored afterwards.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export class ServerCpuError extends Error {
  readonly code = 'BENCH_SERVER_CPU';
}

let ticksPerSecond = 0;

function clockTicks(): number {
  if (ticksPerSecond === 0) ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

/** CPU time (user + system) the process has used so far, ms. */
export function processCpuMs(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    throw new ServerCpuError(`reading /proc/${pid}/stat failed (${(err as Error).message}): the server process has gone; see its output above`);
  }
  // pid (comm) state ppid ...: utime and stime are fields 14 and 15, the 12th and 13th after the comm.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / clockTicks();
}

/** CPU used by the servers during one run, ms. */
export interface ServerCpu {
  s3Ms: number;
  proxyMs: number;
}

/** Reads both servers' CPU now; the returned function gives what they used since. */
export function serverCpuSince(s3Pid: number, proxyPid: number): () => ServerCpu {
  const s3 = processCpuMs(s3Pid);
  const proxy = processCpuMs(proxyPid);
  return () => ({ s3Ms: processCpuMs(s3Pid) - s3, proxyMs: processCpuMs(proxyPid) - proxy });
}

/** Pins every thread of `pid` to `cpus` (a taskset list); returns a function that restores the old mask. */
export function pinProcess(pid: number, cpus: string): () => void {
  const affinity = (args: string[]): string => {
    try {
      return execFileSync('taskset', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stderr?: string };
      throw new ServerCpuError(`taskset ${args.join(' ')} failed: ${e.stderr?.trim() ?? String(err)} (taskset comes with util-linux: make system-deps)`);
    }
  };
  const old = /list:\s*(\S+)/.exec(affinity(['-p', '-c', String(pid)]))?.[1];
  if (!old) throw new ServerCpuError(`taskset -p -c ${pid} printed no CPU list`);
  affinity(['-a', '-p', '-c', cpus, String(pid)]);
  return () => void affinity(['-a', '-p', '-c', old, String(pid)]);
}
