/**
 * One corpus and profile's runs reduced to medians, and the limits they are judged against:
 *
 * - the old, inflate-only limit: max(raw parallel GET, inflate CPU ÷ cores);
 * - the limit: max(raw parallel GET, (inflate CPU + the S3 server's and the shaping proxy's CPU
 *   during snaploader's runs + the write-only floor's CPU) ÷ cores);
 * - at 1 core (the S3 server pinned to the other CPU, as S3 runs elsewhere on Lambda):
 *   max(raw parallel GET at 1 core, inflate CPU + write-only floor CPU at 1 core).
 */
import { METHOD_LABELS, MethodId, RunResult } from './methods';
import type { KernelUsage } from './proc';
import type { CorpusResult } from './result-types';
import { median } from './stats';

export const ok = (runs: RunResult[] | undefined): RunResult[] => (runs ?? []).filter((r) => r.ok);

/** Medians of what the kernel counted for one method's successful runs. */
export type KernelMedians = Pick<KernelUsage, 'userMs' | 'sysMs' | 'minflt' | 'majflt' | 'nvcsw' | 'nivcsw'>;

export interface Summary {
  cr: CorpusResult;
  ms: Partial<Record<MethodId, number>>;
  n: Partial<Record<MethodId, number>>;
  failed: Partial<Record<MethodId, string>>;
  kernel: Partial<Record<MethodId, KernelMedians>>;
  /** Median inflate-only CPU time (all entries, one core), ms. */
  inflateCpuMs: number;
  /** Median CPU the S3 server and the shaping proxy used during snaploader's runs, ms. */
  serverCpuMs: number;
  /** Median CPU time of the write-only floor, ms. */
  writeCpuMs: number;
  /** max(raw, inflate CPU ÷ cores): the limit before the write floor and the servers counted. */
  oldLimitMs: number;
  limitMs: number;
  seedRatio: number;
  /** seed ÷ limit: the most any method, at the limit itself, could be faster than the seed. */
  ceilingRatio: number;
  limitRatio: number;
  oldLimitRatio: number;
  /** Largest over the runs. */
  oursPeakRss: number;
  oursTotal: number;
  seedPeakRss: number;
  seedTotal: number;
  unzipPeakRss: number;
}

function kernelMedians(runs: RunResult[]): KernelMedians | undefined {
  const k = runs.map((r) => r.kernel).filter((u): u is KernelUsage => u !== undefined);
  if (k.length === 0) return undefined;
  const m = (f: (u: KernelUsage) => number) => median(k.map(f));
  return { userMs: m((u) => u.userMs), sysMs: m((u) => u.sysMs), minflt: m((u) => u.minflt), majflt: m((u) => u.majflt), nvcsw: m((u) => u.nvcsw), nivcsw: m((u) => u.nivcsw) };
}

/**
 * `cores`: the cores the CPU-bound work may spread over. `cpuFrom`: where the inflate-only and
 * write-floor runs are (the 1-core results take the inflate CPU of their 2-core twin).
 */
export function summarise(cr: CorpusResult, cores: number, cpuFrom: CorpusResult = cr): Summary {
  const ms: Summary['ms'] = {};
  const n: Summary['n'] = {};
  const failed: Summary['failed'] = {};
  const kernel: Summary['kernel'] = {};
  for (const m of Object.keys(METHOD_LABELS) as MethodId[]) {
    const good = ok(cr.runs[m]);
    n[m] = good.length;
    if (good.length) ms[m] = median(good.map((r) => r.ms));
    const k = kernelMedians(good);
    if (k) kernel[m] = k;
    const bad = (cr.runs[m] ?? []).find((r) => !r.ok);
    if (bad) failed[m] = bad.error ?? 'failed';
  }
  const inflateCpuMs = median(ok(cpuFrom.runs.inflate).map((r) => Number(r.detail?.cpuMs ?? NaN)));
  const writeRuns = ok(cr.runs.write).length ? cr.runs.write : cpuFrom.runs.write;
  const writeCpuMs = median(ok(writeRuns).map((r) => r.ms));
  const oursServers = ok(cr.runs.ours).filter((r) => r.servers);
  const serverCpuMs = oursServers.length ? median(oursServers.map((r) => r.servers!.s3Ms + r.servers!.proxyMs)) : NaN;
  const inflate = Number.isFinite(inflateCpuMs) ? inflateCpuMs : 0;
  const oldLimitMs = Math.max(ms.raw ?? NaN, inflate / cores);
  // At 1 core the S3 server runs on the other CPU: its CPU is not the function's.
  const cpuWork = inflate + (cores > 1 ? serverCpuMs : 0) + writeCpuMs;
  const limitMs = Math.max(ms.raw ?? NaN, cpuWork / cores);
  const max = (m: MethodId, f: (r: RunResult) => number | undefined) => Math.max(0, ...ok(cr.runs[m]).map((r) => f(r) ?? 0));
  return {
    cr, ms, n, failed, kernel, inflateCpuMs, serverCpuMs, writeCpuMs, oldLimitMs, limitMs,
    seedRatio: (ms.seed ?? NaN) / (ms.ours ?? NaN),
    ceilingRatio: (ms.seed ?? NaN) / limitMs,
    limitRatio: (ms.ours ?? NaN) / limitMs,
    oldLimitRatio: (ms.ours ?? NaN) / oldLimitMs,
    oursPeakRss: max('ours', (r) => (r.peakRssKiB ?? 0) * 1024),
    oursTotal: max('ours', (r) => r.totalBytes),
    seedPeakRss: max('seed', (r) => (r.peakRssKiB ?? 0) * 1024),
    seedTotal: max('seed', (r) => r.totalBytes),
    unzipPeakRss: max('unzip', (r) => (r.peakRssKiB ?? 0) * 1024),
  };
}

/** The memory target's allowance over the unpacked size: 250 MB. */
export const MEMORY_ALLOWANCE = 250e6;
