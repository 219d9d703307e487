/**
 * The methods the benchmark times, each from a cold process until every file is in place.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, truncateSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { loadConfig } from '../src/config';
import { NODE_OPT } from '../src/dev/paths';
import { EngineSampler, KernelUsage, Runner, timed } from './proc';
import { ServerCpu, serverCpuSince } from './server-cpu';
import { BUCKET, CREDENTIALS, objectUrl, Profile, REGION } from './servers';

export type MethodId = 'ours' | 'seed' | 'unzip' | 'raw' | 'inflate' | 'write';

export const METHOD_LABELS: Record<MethodId, string> = {
  ours: 'snaploader',
  seed: 'seed (one GET, zipfile, dict)',
  unzip: 'download + unzip',
  raw: 'raw parallel GET',
  inflate: 'inflate only / cores',
  write: 'write-only floor',
};

export interface RunResult {
  method: MethodId;
  /** Wall time, ms (for inflate: CPU time divided by the cores; for write: its CPU time). */
  ms: number;
  ok: boolean;
  error?: string;
  /** Peak RSS of the measured program (the init program for ours), KiB. */
  peakRssKiB?: number;
  /** Bytes in memfds at the end. */
  memfdBytes?: number;
  /** Peak RSS + helper RSS + memfd bytes (ours), peak RSS + memfd bytes (seed), bytes. */
  totalBytes?: number;
  detail?: Record<string, number | string | boolean>;
  /** What the kernel counted for the measured process and the descendants it reaped (bench/rusage-run.c). */
  kernel?: KernelUsage;
  /** CPU the local S3 server and the shaping proxy used during the run. */
  servers?: ServerCpu;
  /** The CPUs the run was pinned to ("0" for the 1-core runs); unset: all of them. */
  cpus?: string;
}

export interface Ctx {
  opt: string;
  scratch: string;
  benchDir: string;
  builtDir: string;
  cores: number;
  concurrency: number;
  rangeSize: number;
  sampleMs: number;
  /** bench/rusage-run.c, built by the harness: every timed method runs under it. */
  runner: string;
  /** bench/write-floor.c, built by the harness. */
  writeFloor: string;
  /** PIDs of the local S3 server and the shaping proxy, whose CPU each run records. */
  servers: { s3: number; proxy: number };
  /** Pin the measured process to these CPUs (the 1-core runs); unset: no pinning. */
  cpus?: string;
}

const runnerOf = (ctx: Ctx): Runner => ({ path: ctx.runner, cpus: ctx.cpus });

/** The kernel's numbers, the servers' CPU and the pinning of a run, for its RunResult. */
function measured(ctx: Ctx, kernel: KernelUsage | undefined, servers?: ServerCpu): Pick<RunResult, 'kernel' | 'servers' | 'cpus'> {
  return { kernel, servers, ...(ctx.cpus ? { cpus: ctx.cpus } : {}) };
}

const PATH_ENV = '/usr/local/bin:/usr/bin:/bin';

/** Seconds an engine run may take before its helper stops it (SNAPLOADER_TIMEOUT). */
export const OURS_TIMEOUT_S = 120;

function clean(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/*
 * Finished runs' files are moved aside and emptied (truncated to 0), not deleted. This /tmp is
 * ext4 without a journal, which skips inodes freed in the last 60 s when it allocates new ones:
 * deleting a run's thousands of files made the next run's file creation walk past them
 * (measured: ~0.5 s of 3 s on the stack corpus, for snaploader and unzip alike). A cold Lambda
 * sandbox has a fresh /tmp, with no such inodes. Emptied, they hold no disk and no page cache
 * (which would otherwise squeeze the memory of the methods after them); only their inodes
 * stay, until the scratch directory is removed at the end, or TRASH_MAX_FILES pile up.
 */
const TRASH_MAX_FILES = 2_000_000;
const RECENTLY_DELETED_MS = 61_000;
let trashSeq = 0;
let trashFiles = 0;

/** Truncates every regular file under `dir`; returns how many there were. */
function emptyFiles(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += emptyFiles(p);
    else if (e.isFile()) {
      truncateSync(p, 0);
      n++;
    }
  }
  return n;
}

/** Moves `path` (if it exists) into the scratch directory's trash and empties its files. */
function discard(ctx: Ctx, path: string): void {
  if (!existsSync(path)) return;
  const trash = join(ctx.scratch, 'trash');
  mkdirSync(trash, { recursive: true });
  const to = join(trash, String(trashSeq++));
  renameSync(path, to);
  trashFiles += emptyFiles(to);
}

/** Deletes the trash when its inodes pile up, then waits until ext4 no longer skips them. */
export async function emptyTrashIfFull(ctx: Ctx, say: (line: string) => void): Promise<void> {
  if (trashFiles < TRASH_MAX_FILES) return;
  say(`  deleting ${trashFiles} emptied files of finished runs, then waiting ${RECENTLY_DELETED_MS / 1000} s (see discard())`);
  clean(join(ctx.scratch, 'trash'));
  trashFiles = 0;
  execFileSync('sync');
  await new Promise((resolve) => setTimeout(resolve, RECENTLY_DELETED_MS));
}

/** The engine's tree and any staging directory (`<target>.partial-XXXXXX`) a failed run left. */
function cleanTree(ctx: Ctx, target: string): void {
  discard(ctx, target);
  const parent = dirname(target);
  const prefix = `${basename(target)}.partial-`;
  for (const name of readdirSync(parent)) if (name.startsWith(prefix)) discard(ctx, join(parent, name));
}

/** Between runs: the previous run's files gone and written back, so no run pays for another's. */
export function settle(): void {
  execFileSync('sync');
}

function fail(method: MethodId, ms: number, why: string): RunResult {
  return { method, ms, ok: false, error: why.trim().split('\n').slice(-3).join(' | ').slice(0, 400) };
}

/**
 * The Node.js the engine runs on: the Node layer's (what a Python or Java function runs the
 * init program with, and what the layer's code cache is made for), or BENCH_NODE. The raw-GET
 * limit and the inflate-only floor run on it too.
 */
export const ENGINE_NODE = process.env.BENCH_NODE || join(NODE_OPT, 'snaploader', 'node', 'bin', 'node');

/** The environment of an engine run: a function of 10,240 MB, every snaploader setting at its default except the budgets. */
export function oursEnv(profile: Profile, key: string, target: string, extraEnv: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: PATH_ENV, HOME: '/tmp', LANG: 'C.UTF-8',
    AWS_ENDPOINT_URL_S3: profile.endpoint, AWS_REGION: REGION, ...CREDENTIALS,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '10240',
    SNAPLOADER_BUCKET: BUCKET, SNAPLOADER_KEY: key,
    SNAPLOADER_TARGET_DIR: target,
    SNAPLOADER_TMP_BUDGET: '4G',
    // On-demand inits get 9 s by default; the benchmark measures how long they take, so the
    // limit is raised, but kept finite: a run that hangs fails after 2 minutes, and the rest go on.
    SNAPLOADER_TIMEOUT: String(OURS_TIMEOUT_S),
    SNAPLOADER_NODE: ENGINE_NODE,
    ...extraEnv,
  };
}

/**
 * GETs in flight and range size the engine picks for that environment, from its own
 * configuration code, so that the raw-GET limit uses exactly the same.
 */
export function engineTransfer(env: Record<string, string>): { concurrency: number; rangeSize: number } {
  const c = loadConfig(env);
  return { concurrency: c.concurrency, rangeSize: c.rangeSize };
}

/** The engine, for real: wrapper.sh -> helper -> init program, then exec /bin/true. */
export async function runOurs(ctx: Ctx, profile: Profile, key: string, expectFiles: number, n: number, extraEnv: Record<string, string> = {}): Promise<RunResult> {
  const target = join(ctx.scratch, `ours-${n}`);
  cleanTree(ctx, target);
  const env = oursEnv(profile, key, target, extraEnv);
  const sampler = new EngineSampler(ctx.sampleMs);
  let r;
  let serverCpu: ServerCpu | undefined;
  try {
    const servers = serverCpuSince(ctx.servers.s3, ctx.servers.proxy);
    r = await timed(join(ctx.opt, 'snaploader', 'wrapper.sh'), ['/bin/true'], { env, onSpawn: (pid) => sampler.start(pid), runner: runnerOf(ctx) });
    serverCpu = servers();
  } finally {
    sampler.stop();
  }
  const mem = sampler.mem;
  cleanTree(ctx, target);
  if (r.code !== 0) return fail('ours', r.wallMs, `exit ${r.code ?? r.signal}: ${r.stderr}`);
  const m = /loaded (\d+) files .* in ([\d.]+) s/.exec(r.stderr);
  if (!m) return fail('ours', r.wallMs, `no "loaded" line: ${r.stderr}`);
  if (Number(m[1]) !== expectFiles) return fail('ours', r.wallMs, `loaded ${m[1]} files, the archive has ${expectFiles}`);
  return {
    method: 'ours',
    ms: r.wallMs,
    ok: true,
    ...measured(ctx, r.kernel, serverCpu),
    peakRssKiB: mem.initPeakKiB,
    memfdBytes: mem.memfdBytes,
    totalBytes: (mem.initPeakKiB + mem.helperPeakKiB) * 1024 + mem.memfdBytes,
    detail: { initReportedS: Number(m[2]), helperPeakKiB: mem.helperPeakKiB, initShmemKiB: mem.initShmemKiB, memfds: mem.memfds, samples: mem.samples, sawInit: mem.sawInit },
  };
}

/** The seed algorithm (bench/seed.py). */
export async function runSeed(ctx: Ctx, profile: Profile, key: string, expectFiles: number): Promise<RunResult> {
  const servers = serverCpuSince(ctx.servers.s3, ctx.servers.proxy);
  const r = await timed('python3', [join(ctx.benchDir, 'seed.py'), objectUrl(profile, key)], { env: { PATH: PATH_ENV, LANG: 'C.UTF-8' }, runner: runnerOf(ctx) });
  const serverCpu = servers();
  if (r.code !== 0) return fail('seed', r.wallMs, `exit ${r.code ?? r.signal}: ${r.stderr}`);
  const o = JSON.parse(r.stdout.trim().split('\n').pop()!);
  if (o.files !== expectFiles) return fail('seed', r.wallMs, `read ${o.files} files, the archive has ${expectFiles}`);
  return {
    method: 'seed',
    ms: r.wallMs,
    ok: true,
    ...measured(ctx, r.kernel, serverCpu),
    peakRssKiB: o.maxrss_kib,
    memfdBytes: o.memfd_bytes,
    totalBytes: o.maxrss_kib * 1024 + o.memfd_bytes,
    detail: { downloadS: o.download_s, extractS: o.extract_s, memfds: o.memfds },
  };
}

/** Download to a file with one GET, then `unzip -q` (bench/download_unzip.py). */
export async function runUnzip(ctx: Ctx, profile: Profile, key: string, expectFiles: number, n: number): Promise<RunResult> {
  const zip = join(ctx.scratch, `unzip-${n}.zip`);
  const dest = join(ctx.scratch, `unzip-${n}`);
  clean(zip);
  clean(dest);
  mkdirSync(dest);
  const r = await timed('python3', [join(ctx.benchDir, 'download_unzip.py'), objectUrl(profile, key), zip, dest], { env: { PATH: PATH_ENV, LANG: 'C.UTF-8' }, runner: runnerOf(ctx) });
  let files = 0;
  if (r.code === 0) {
    const count = (d: string): number => readdirSync(d, { withFileTypes: true }).reduce((s, e) => s + (e.isDirectory() ? count(join(d, e.name)) : 1), 0);
    files = count(dest);
  }
  clean(zip); // one file: no inode churn
  discard(ctx, dest);
  if (r.code !== 0) return fail('unzip', r.wallMs, `exit ${r.code ?? r.signal}: ${r.stderr}`);
  if (files !== expectFiles) return fail('unzip', r.wallMs, `unzipped ${files} files, the archive has ${expectFiles}`);
  const o = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return { method: 'unzip', ms: r.wallMs, ok: true, ...measured(ctx, r.kernel), peakRssKiB: o.maxrss_kib, detail: { downloadS: o.download_s, unzipS: o.unzip_s } };
}

/** The network limit: every byte with parallel ranged GETs, bodies discarded (bench/raw-get.mjs). */
export async function runRaw(ctx: Ctx, profile: Profile, key: string, size: number): Promise<RunResult> {
  const servers = serverCpuSince(ctx.servers.s3, ctx.servers.proxy);
  const r = await timed(ENGINE_NODE, [join(ctx.benchDir, 'raw-get.mjs'), objectUrl(profile, key), String(size), String(ctx.concurrency), String(ctx.rangeSize)], { env: { PATH: PATH_ENV }, runner: runnerOf(ctx) });
  const serverCpu = servers();
  if (r.code !== 0) return fail('raw', r.wallMs, `exit ${r.code ?? r.signal}: ${r.stderr}`);
  return { method: 'raw', ms: r.wallMs, ok: true, ...measured(ctx, r.kernel, serverCpu) };
}

/** The CPU limit: inflate-only CPU time of every entry, divided by the cores. */
export async function runInflate(ctx: Ctx, zipPath: string): Promise<RunResult> {
  const script = join(ctx.builtDir, 'inflate-only.js');
  if (!existsSync(script)) throw new Error(`${script} is missing: run the benchmark with node bench/run.mjs`);
  const addon = join(ctx.opt, 'snaploader', 'lib', 'snaploader-native.node');
  const r = await timed(ENGINE_NODE, [script, zipPath, addon], { env: { PATH: PATH_ENV }, runner: runnerOf(ctx) });
  if (r.code !== 0) return fail('inflate', r.wallMs, `exit ${r.code ?? r.signal}: ${r.stderr}`);
  const o = JSON.parse(r.stdout.trim());
  return { method: 'inflate', ms: o.cpu_ms / ctx.cores, ok: true, ...measured(ctx, r.kernel), detail: { cpuMs: o.cpu_ms, inflateWallMs: o.wall_ms, zlibCpuMs: o.zlib_cpu_ms, bytes: o.bytes } };
}

/**
 * The write-only floor (bench/write-floor.c): every unpacked byte written once, from one reused
 * buffer, into memfds and a fresh tree where the engine would put them (the manifest, from
 * bench/floor-manifest.ts). `ms` is its CPU time (user + system), not its wall time.
 */
export async function runWrite(ctx: Ctx, manifest: string, expectFiles: number, n: number): Promise<RunResult> {
  const target = join(ctx.scratch, `write-${n}`);
  cleanTree(ctx, target);
  const r = await timed(ctx.writeFloor, [manifest, target], { env: { PATH: PATH_ENV }, runner: runnerOf(ctx) });
  cleanTree(ctx, target);
  const cpuMs = r.kernel ? r.kernel.userMs + r.kernel.sysMs : NaN;
  if (r.code !== 0) return fail('write', cpuMs, `exit ${r.code ?? r.signal}: ${r.stderr}`);
  const o = JSON.parse(r.stdout.trim());
  if (o.files !== expectFiles) return fail('write', cpuMs, `wrote ${o.files} files, the manifest has ${expectFiles}`);
  return { method: 'write', ms: cpuMs, ok: true, ...measured(ctx, r.kernel), detail: { wallMs: r.wallMs, files: o.files, memfds: o.memfds, bytes: o.bytes } };
}
