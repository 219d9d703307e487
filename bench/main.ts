/**
 * `make bench` (node bench/run.mjs): the benchmark harness. Builds (or reuses) the corpora,
 * starts a local S3 and the shaping proxy, times every method on every corpus and profile,
 * measures the wrapper's overhead and the preload library's cost, and writes BENCHMARKS.md,
 * bench/results/results.json and bench/results/scaling.svg.
 *
 * BENCH_QUICK=1: small corpora, one run, results under .cache/bench/quick/ (BENCHMARKS.md is
 * left alone). BENCH_RUNS=N: runs per corpus (BENCH_RUNS_1G, BENCH_RUNS_2G: for the two
 * largest). BENCH_ONLY=stack,pypi,series,overhead,preload (any subset): only those parts
 * (stack includes the PyPI ML-stack corpus, bench/pypi-corpus.ts; pypi is that corpus alone),
 * results under .cache/bench/partial/ (BENCHMARKS.md is left alone).
 * BENCH_OPT=<dir>: the layer's /opt (default build/x86_64/opt, what `make build-x86_64`
 * leaves; a private copy is measured). BENCH_QUIET_MAX_MS: how long to wait for a quiet machine
 * before each repetition (10 s). BENCH_RENDER=1: rewrite the outputs from the last results.json.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from '../src/dev/paths';
import { zigCc } from '../src/dev/zig';
import { encodeMappingFile, MapRecord, RecordKind } from '../src/mapping-file';
import { Corpus, emptyZip, ensureCorpora, GiB, MiB } from './corpus';
import { benchCorpora } from './corpus-runs';
import { Ctx, ENGINE_NODE, engineTransfer, oursEnv, runOurs } from './methods';
import { Runner, timed } from './proc';
import { ensurePypiCorpus } from './pypi-corpus';
import { waitQuiet } from './quiet';
import { median } from './stats';
import { preloadControl, preloadCost } from './preload-stats';
import { renderMarkdown } from './report';
import { renderSvg } from './report-svg';
import type { PreloadSample, Results } from './result-types';
import { ensureBucket, ensureObject, Profile, startNetwork } from './servers';

const QUICK = process.env.BENCH_QUICK === '1';
const ALL_PARTS = ['stack', 'series', 'overhead', 'preload'];
const ONLY = new Set((process.env.BENCH_ONLY ?? ALL_PARTS.join(',')).split(',').map((s) => s.trim()).filter(Boolean));
/**
 * Where a run that is not the full one writes its outputs (its BENCHMARKS.md included), so that
 * it never replaces the full report: quick runs and runs of some parts only. Null: the full run.
 */
const SIDE_DIR = QUICK ? 'quick' : ALL_PARTS.some((p) => !ONLY.has(p)) ? 'partial' : null;

function outputDir(): string {
  return SIDE_DIR ? join(ROOT, '.cache', 'bench', SIDE_DIR) : join(ROOT, 'bench', 'results');
}
const RUNS = Number(process.env.BENCH_RUNS ?? (QUICK ? 1 : 5));
/**
 * Every corpus gets RUNS repetitions by default (medians of 5: a full run takes ~35 minutes on
 * two cores, the 1-core runs and the PyPI stack included, a 2 GiB repetition ~3.5 of them). BENCH_RUNS_1G / BENCH_RUNS_2G lower it for the
 * two largest series corpora, for a quicker look.
 */
const RUNS_1G = Number(process.env.BENCH_RUNS_1G ?? RUNS);
const RUNS_2G = Number(process.env.BENCH_RUNS_2G ?? RUNS);

function runsFor(c: Corpus): number {
  if (QUICK || c.kind !== 'series' || c.unpackedBytes < 0.75 * GiB) return RUNS;
  return Math.min(RUNS, c.unpackedBytes >= 1.5 * GiB ? RUNS_2G : RUNS_1G);
}
const OVERHEAD_RUNS = QUICK ? 5 : 21;
const PRELOAD_RUNS = QUICK ? 3 : 21;
const PRELOAD_CALLS = QUICK ? 50_000 : 200_000;
const MAPPINGS = 10_000;
const SHAPING = { ttfbMs: 20, rateMBs: 90 };
const QUIET_MAX_MS = Number(process.env.BENCH_QUIET_MAX_MS ?? 10_000);

const say = (s: string): void => void process.stdout.write(`bench: ${s}\n`);

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

function machine(): Record<string, string | number> {
  const os = (readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)/m) ?? [])[1] ?? 'unknown';
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / GiB),
    kernel: release(),
    os,
    // The engine's, the raw GET's and the inflate floor's Node (the Node layer's); the harness's may differ.
    node: sh(ENGINE_NODE, ['--version']),
    python: sh('python3', ['--version']).replace('Python ', ''),
    zip: (sh('zip', ['-v']).match(/This is Zip ([\d.]+)/) ?? [])[1] ?? '',
    unzip: (sh('unzip', ['-v']).match(/UnZip ([\d.]+)/) ?? [])[1] ?? '',
    tmpFs: sh('df', ['-T', tmpdir()]).split('\n')[1]?.split(/\s+/)[1] ?? '',
  };
}

/** Before each repetition (not in quick mode): see bench/quiet.ts. */
async function quiet(results: Results, before: string): Promise<void> {
  if (!QUICK) await waitQuiet(results, before, QUIET_MAX_MS);
}

function fmtS(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** Wrapper -> helper -> init program -> exec with an empty archive, against a plain exec. */
async function benchOverhead(ctx: Ctx, results: Results, profiles: Profile[], s3Endpoint: string): Promise<void> {
  const file = join(ctx.scratch, 'empty.zip');
  writeFileSync(file, emptyZip());
  await ensureObject(s3Endpoint, 'empty.zip', file);
  results.overhead = {};
  for (const p of profiles) {
    const o = { plainMs: [] as number[], wrapperMs: [] as number[], nodeMs: [] as number[], errors: [] as string[] };
    results.overhead[p.id] = o;
    await quiet(results, `overhead ${p.id}`);
    for (let i = 0; i < OVERHEAD_RUNS; i++) {
      const runner: Runner = { path: ctx.runner };
      const plain = await timed('/bin/true', [], { env: { PATH: '/usr/bin:/bin' }, runner });
      if (plain.code === 0) o.plainMs.push(plain.wallMs);
      const node = await timed(ENGINE_NODE, ['-e', '0'], { env: { PATH: '/usr/bin:/bin' }, runner });
      if (node.code === 0) o.nodeMs.push(node.wallMs);
      const r = await runOurs(ctx, p, 'empty.zip', 0, 900_000 + i);
      if (r.ok) o.wrapperMs.push(r.ms);
      else o.errors.push(r.error ?? 'failed');
    }
    say(`overhead (${p.id}): wrapper ${fmtS(median(o.wrapperMs))} vs plain exec ${fmtS(median(o.plainMs))} (median of ${OVERHEAD_RUNS})${o.errors.length ? `; ${o.errors.length} failed: ${o.errors[0]}` : ''}`);
  }
}

/** open+close of an unmapped path with 10,000 mappings loaded, with and without the library. */
async function benchPreload(ctx: Ctx, results: Results): Promise<void> {
  const dir = join(ctx.scratch, 'preload');
  mkdirSync(join(dir, 'tree'), { recursive: true });
  const probe = zigCc(join(dir, 'probe'), ['-rdynamic', join(ROOT, 'test', 'fixtures', 'preload', 'probe.c'), '-ldl', '-lpthread']);
  const records: MapRecord[] = [];
  for (let i = 0; i < MAPPINGS; i++) {
    const rel = `pkg${i % 97}/sub${i % 13}/lib${i}.so`;
    records.push({ kind: RecordKind.Path, key: Buffer.from(`/var/task/${rel}`), value: Buffer.from(join(dir, 'tree', rel)) });
  }
  const mapped = join(dir, 'tree', 'mapped.txt');
  writeFileSync(mapped, 'mapped');
  records.push({ kind: RecordKind.Path, key: Buffer.from('/var/task/mapped.txt'), value: Buffer.from(mapped) });
  const map = join(dir, 'map');
  writeFileSync(map, encodeMappingFile(records));
  const unmapped = join(dir, 'unmapped.txt');
  writeFileSync(unmapped, 'an ordinary file');
  // An unmapped file whose last two components have the lengths of a mapped one's
  // (`sub9/lib100.so` is a key): the library's length checks let it through to the hash.
  const lookalike = join(dir, 'other', 'sub9', 'lib999.so');
  mkdirSync(dirname(lookalike), { recursive: true });
  writeFileSync(lookalike, 'an ordinary file');
  const lib = join(ctx.opt, 'snaploader', 'lib', 'libsnaploader.so');
  const bench = async (preload: boolean, path: string): Promise<{ linked: number; libc: number }> => {
    const env: Record<string, string> = { PATH: '/usr/bin:/bin' };
    if (preload) Object.assign(env, { LD_PRELOAD: lib, SNAPLOADER_MAP: map });
    const r = await timed(probe, ['bench', String(PRELOAD_CALLS), path], { env });
    const m = /ns_per_call=([\d.]+) libc_ns=([\d.]+)/.exec(r.stdout);
    if (r.code !== 0 || !m) throw new Error(`probe bench failed (${r.code}): ${r.stdout}${r.stderr}`);
    return { linked: Number(m[1]), libc: Number(m[2]) };
  };
  const sample = (): PreloadSample => ({ withNs: [], withLibcNs: [], withoutNs: [], withoutLibcNs: [] });
  const res = { mappings: records.length, calls: PRELOAD_CALLS, unmapped: sample(), lookalike: sample(), mappedNs: [] as number[] };
  const measure = async (into: PreloadSample, path: string) => {
    const without = await bench(false, path);
    const withLib = await bench(true, path);
    into.withoutNs.push(without.linked);
    into.withoutLibcNs.push(without.libc);
    into.withNs.push(withLib.linked);
    into.withLibcNs.push(withLib.libc);
  };
  await quiet(results, 'preload');
  for (let i = 0; i < PRELOAD_RUNS; i++) {
    await measure(res.unmapped, unmapped);
    await measure(res.lookalike, lookalike);
    res.mappedNs.push((await bench(true, '/var/task/mapped.txt')).linked);
  }
  results.preload = res;
  const pct = (x: PreloadSample) => `${preloadCost(x).toFixed(1)}% (control ${preloadControl(x).toFixed(1)}%)`;
  say(`preload: open+close through the library vs libc's open in the same process: unmapped path ${pct(res.unmapped)}, ` +
    `one with a mapped path's lengths ${pct(res.lookalike)}; a mapped path ${median(res.mappedNs).toFixed(0)} ns`);
}

/** BENCH_RENDER=1: only rewrite BENCHMARKS.md and the plot from the last results.json. */
function renderOnly(): void {
  const outDir = outputDir();
  const results = JSON.parse(readFileSync(join(outDir, 'results.json'), 'utf8')) as Results;
  writeOutputs(results, outDir);
}

/** The shared-memory section `make bench-shm` measures (bench/shm.mjs), kept as it last wrote it. */
function shmSection(): string {
  const path = join(ROOT, 'bench', 'results', 'shm.md');
  return existsSync(path) ? `\n${readFileSync(path, 'utf8')}` : '';
}

function writeOutputs(results: Results, outDir: string): void {
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 1)}\n`);
  const svg = renderSvg(results);
  if (svg) writeFileSync(join(outDir, 'scaling.svg'), svg);
  const md = renderMarkdown(results, { svgPath: SIDE_DIR ? 'scaling.svg' : 'bench/results/scaling.svg' });
  const mdPath = SIDE_DIR ? join(outDir, 'BENCHMARKS.md') : join(ROOT, 'BENCHMARKS.md');
  writeFileSync(mdPath, `${md.trimEnd()}\n${shmSection()}`);
  say(`wrote ${mdPath}, ${join(outDir, 'results.json')}${svg ? `, ${join(outDir, 'scaling.svg')}` : ''}`);
}

async function main(): Promise<void> {
  if (process.env.BENCH_RENDER === '1') return renderOnly();
  const started = performance.now();
  const builtOpt = process.env.BENCH_OPT ?? join(ROOT, 'build', 'x86_64', 'opt');
  for (const f of ['snaploader/wrapper.sh', 'snaploader/bin/snaploader-helper', 'snaploader/init-main.js', 'snaploader/lib/libsnaploader.so']) {
    if (!existsSync(join(builtOpt, f))) throw new Error(`${join(builtOpt, f)} is missing: run \`make build-x86_64\` first`);
  }
  if (!existsSync(ENGINE_NODE)) throw new Error(`${ENGINE_NODE} is missing: run \`make build-x86_64\` first (it builds the Node layer), or set BENCH_NODE`);
  const cacheDir = join(ROOT, '.cache', 'bench');
  const outDir = outputDir();
  mkdirSync(outDir, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), 'snaploader-bench-'));
  // A private copy of the layer: a rebuild during a long run neither breaks it nor mixes versions.
  const opt = join(scratch, 'opt');
  cpSync(builtOpt, opt, { recursive: true });
  const initSha = createHash('sha256').update(readFileSync(join(opt, 'snaploader', 'init-main.js'))).digest('hex').slice(0, 12);
  const ctx: Ctx = {
    opt, scratch,
    benchDir: join(ROOT, 'bench'),
    builtDir: join(ROOT, 'build', 'bench'),
    cores: availableParallelism(),
    concurrency: 0,
    rangeSize: 0,
    sampleMs: 20,
    // Our C tools, built for this machine with the project's zig cc.
    runner: zigCc(join(ROOT, 'build', 'bench', 'rusage-run'), [join(ROOT, 'bench', 'rusage-run.c')]),
    writeFloor: zigCc(join(ROOT, 'build', 'bench', 'write-floor'), [join(ROOT, 'bench', 'write-floor.c')]),
    servers: { s3: -1, proxy: -1 },
  };
  // The raw-GET limit moves bytes exactly as the engine would in these runs.
  Object.assign(ctx, engineTransfer(oursEnv({ id: 'loopback', label: '', endpoint: 'http://127.0.0.1:1' }, 'k.zip', join(scratch, 'ours'))));
  const stopOnSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`bench: ${sig}: stopping\n`);
    rmSync(scratch, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  const results: Results = {
    quick: QUICK,
    date: new Date().toISOString(),
    commit: sh('git', ['-C', ROOT, 'describe', '--always', '--dirty']),
    initSha,
    machine: machine(),
    settings: {
      runs: RUNS, runs1G: RUNS_1G, runs2G: RUNS_2G, concurrency: ctx.concurrency, rangeMiB: ctx.rangeSize / MiB, sampleMs: ctx.sampleMs,
      ttfbMs: SHAPING.ttfbMs, rateMBs: SHAPING.rateMBs, overheadRuns: OVERHEAD_RUNS, preloadRuns: PRELOAD_RUNS,
    },
    profiles: [],
    corpora: [],
    quietWaits: [],
    wallMinutes: 0,
  };
  say(`${QUICK ? 'quick mode: ' : ''}${results.machine.cores} cores, ${results.machine.memoryGiB} GiB, Linux ${results.machine.kernel}, Node ${results.machine.node}, Python ${results.machine.python}; layer ${builtOpt} (init-main.js ${initSha}); ${ctx.concurrency} GETs of ${ctx.rangeSize / MiB} MiB in flight`);

  const corpora: Corpus[] = [];
  const stackBytes = QUICK ? 96 * MiB : 700 * MiB;
  const seriesBytes = QUICK ? [32 * MiB, 64 * MiB, 128 * MiB] : [0.25 * GiB, 0.5 * GiB, 1 * GiB, 2 * GiB];
  const label = (b: number) => (b >= 0.25 * GiB ? `${b / GiB} GiB` : `${b / MiB} MiB`);
  if (ONLY.has('stack')) {
    corpora.push(...ensureCorpora(cacheDir, { id: `${QUICK ? 'quick-' : ''}stack`, label: 'stack', kind: 'stack', bytes: stackBytes, methods: ['deflate', 'store'] }, say));
  }
  if (ONLY.has('stack') || ONLY.has('pypi')) corpora.push(ensurePypiCorpus(ctx.benchDir, cacheDir, QUICK, say));
  if (ONLY.has('series')) {
    for (const b of seriesBytes) {
      corpora.push(...ensureCorpora(cacheDir, { id: `${QUICK ? 'quick-' : ''}series-${b / MiB}m`, label: label(b), kind: 'series', bytes: b, methods: ['deflate'] }, say));
    }
  }

  const storeDir = join(cacheDir, 's3');
  mkdirSync(storeDir, { recursive: true });
  const { s3, proxy, profiles } = await startNetwork(ctx.benchDir, storeDir, SHAPING);
  results.profiles = profiles;
  ctx.servers = { s3: s3.pid, proxy: proxy.pid };
  const s3Endpoint = profiles[0].endpoint;
  try {
    await ensureBucket(s3Endpoint);
    if (corpora.length) await benchCorpora(ctx, results, corpora, profiles, s3Endpoint, { runsFor, quiet: (before) => quiet(results, before), say });
    if (ONLY.has('overhead')) await benchOverhead(ctx, results, profiles, s3Endpoint);
    if (ONLY.has('preload')) await benchPreload(ctx, results);
  } finally {
    await proxy.stop();
    await s3.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
  results.wallMinutes = Math.round((performance.now() - started) / 600) / 100;
  writeOutputs(results, outDir);
  say(`done in ${results.wallMinutes} min`);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err?.stack ?? err}\n`);
  process.exit(1);
});
