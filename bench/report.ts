/**
 * BENCHMARKS.md and the scaling plot (a hand-written SVG) from the results.
 */
import { MiB } from './corpus';
import { METHOD_LABELS, MethodId, RunResult } from './methods';
import type { CorpusResult, PreloadSample, Results } from './result-types';

const MB = 1e6;
/** The memory target's allowance over the unpacked size: 250 MB. */
const MEMORY_ALLOWANCE = 250 * MB;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const profileName = (id: string): string => (id === 's3like' ? 'S3-like' : id);
const ok = (runs: RunResult[] | undefined): RunResult[] => (runs ?? []).filter((r) => r.ok);

export interface Summary {
  cr: CorpusResult;
  ms: Partial<Record<MethodId, number>>;
  n: Partial<Record<MethodId, number>>;
  failed: Partial<Record<MethodId, string>>;
  limitMs: number;
  seedRatio: number;
  limitRatio: number;
  /** Largest over the runs. */
  oursPeakRss: number;
  oursTotal: number;
  seedPeakRss: number;
  seedTotal: number;
  unzipPeakRss: number;
}

/** % more per open+close through the library than through libc's open, in the same process
 * (median over runs): the library's cost. */
export function preloadCost(x: PreloadSample): number {
  return median(x.withNs.map((ns, i) => (ns / x.withLibcNs[i] - 1) * 100));
}

/** The same comparison in processes without the library, where both calls are libc's: the
 * method's own error. */
export function preloadControl(x: PreloadSample): number {
  return median(x.withoutNs.map((ns, i) => (ns / x.withoutLibcNs[i] - 1) * 100));
}

/** % more with the library than without, across separate processes (medians over runs). */
export function preloadAcross(x: PreloadSample): number {
  return (median(x.withNs) / median(x.withoutNs) - 1) * 100;
}

export function summarise(cr: CorpusResult): Summary {
  const ms: Summary['ms'] = {};
  const n: Summary['n'] = {};
  const failed: Summary['failed'] = {};
  for (const m of Object.keys(METHOD_LABELS) as MethodId[]) {
    const good = ok(cr.runs[m]);
    n[m] = good.length;
    if (good.length) ms[m] = median(good.map((r) => r.ms));
    const bad = (cr.runs[m] ?? []).find((r) => !r.ok);
    if (bad) failed[m] = bad.error ?? 'failed';
  }
  const limitMs = Math.max(ms.raw ?? NaN, ms.inflate ?? 0);
  const max = (m: MethodId, f: (r: RunResult) => number | undefined) => Math.max(0, ...ok(cr.runs[m]).map((r) => f(r) ?? 0));
  return {
    cr, ms, n, failed, limitMs,
    seedRatio: (ms.seed ?? NaN) / (ms.ours ?? NaN),
    limitRatio: (ms.ours ?? NaN) / limitMs,
    oursPeakRss: max('ours', (r) => (r.peakRssKiB ?? 0) * 1024),
    oursTotal: max('ours', (r) => r.totalBytes),
    seedPeakRss: max('seed', (r) => (r.peakRssKiB ?? 0) * 1024),
    seedTotal: max('seed', (r) => r.totalBytes),
    unzipPeakRss: max('unzip', (r) => (r.peakRssKiB ?? 0) * 1024),
  };
}

const s = (ms: number | undefined): string => (ms === undefined || Number.isNaN(ms) ? '–' : (ms / 1000).toFixed(2));
const x = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(2)}×` : '–');
const mib = (b: number): string => (b > 0 ? `${(b / MiB).toFixed(0)}` : '–');
const pass = (yes: boolean | null): string => (yes === null ? 'n/a' : yes ? 'met' : '**not met**');

function corpusTable(r: Results): string {
  const rows = ['| corpus | files | unpacked MiB | zip MiB | method | files > 100 MB | 1–100 MB | < 1 MiB |', '|---|--:|--:|--:|---|---|--:|--:|'];
  const seen = new Set<string>();
  for (const cr of r.corpora) {
    const c = cr.corpus;
    if (seen.has(c.id)) continue;
    seen.add(c.id);
    const big = c.bigFiles.map((b) => `${(b.size / MiB).toFixed(0)}${b.concatenated ? '*' : ''}`).join(', ');
    rows.push(`| ${c.label} | ${c.files} | ${mib(c.unpackedBytes)} | ${mib(c.zipBytes)} | ${c.method === 'store' ? 'stored' : 'deflate -6'} | ${big || '–'} | ${c.mediumFiles} | ${c.smallFiles} |`);
  }
  return rows.join('\n');
}

function timeTable(sums: Summary[]): string {
  const rows = [
    '| corpus | runs | snaploader | seed | download + unzip | raw parallel GET | inflate / cores | limit | seed ÷ snaploader | snaploader ÷ limit | init peak RSS | total memory | unpacked + 250 MB | seed total |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const m of sums) {
    const c = m.cr.corpus;
    const tried = m.cr.runs.ours?.length ?? 0;
    rows.push(`| ${c.label} | ${m.n.ours ?? 0}${tried !== (m.n.ours ?? 0) ? ` of ${tried}` : ''} | ${s(m.ms.ours)} | ${s(m.ms.seed)} | ${s(m.ms.unzip)} | ${s(m.ms.raw)} | ${s(m.ms.inflate)} | ${s(m.limitMs)} | ${x(m.seedRatio)} | ${x(m.limitRatio)} | ` +
      `${mib(m.oursPeakRss)} | ${mib(m.oursTotal)} | ${mib(c.unpackedBytes + MEMORY_ALLOWANCE)} | ${mib(m.seedTotal)} |`);
  }
  return rows.join('\n');
}

function failures(r: Results): string {
  const lines: string[] = [];
  for (const cr of r.corpora) {
    for (const [method, runs] of Object.entries(cr.runs) as [MethodId, RunResult[]][]) {
      runs.forEach((run, i) => {
        if (!run.ok && !(method === 'inflate' && cr.profile !== r.profiles[0]?.id)) {
          lines.push(`- ${cr.corpus.label}, ${profileName(cr.profile)}, ${METHOD_LABELS[method]}, run ${i + 1}: after ${s(run.ms)} s: \`${(run.error ?? 'failed').replace(/`/g, "'")}\``);
        }
      });
    }
  }
  return lines.length ? `**Failed runs** (left out of the medians):\n\n${lines.join('\n')}\n\n` : '';
}

export function renderMarkdown(r: Results, opts: { svgPath: string }): string {
  const sums = r.corpora.map(summarise);
  const byProfile = (p: string) => sums.filter((m) => m.cr.profile === p);
  const stack = (p: string) => sums.find((m) => m.cr.profile === p && m.cr.corpus.kind === 'stack' && m.cr.corpus.method === 'deflate');
  const stackS3 = stack('s3like');
  const stackLo = stack('loopback');
  const oursOk = sums.filter((m) => m.n.ours);
  const worstRss = oursOk.reduce<Summary | null>((w, m) => (!w || m.oursPeakRss > w.oursPeakRss ? m : w), null);
  const worstMem = oursOk.reduce<Summary | null>((w, m) => (!w || m.oursTotal - m.cr.corpus.unpackedBytes > w.oursTotal - w.cr.corpus.unpackedBytes ? m : w), null);
  const loopWorst = byProfile('loopback').filter((m) => m.n.ours).reduce<Summary | null>((w, m) => (!w || m.limitRatio > w.limitRatio ? m : w), null);
  const ov = r.overhead ?? {};
  const ovMs = (p: string) => (ov[p] ? median(ov[p].wrapperMs) - median(ov[p].plainMs) : NaN);
  const pre = r.preload;
  // Judged on the in-process comparison: the best case (unmapped.txt, turned away by its
  // length) and the realistic one (a path with a mapped path's lengths, hashed).
  const worstPrePct = pre ? Math.max(preloadCost(pre.unmapped), preloadCost(pre.lookalike)) : NaN;
  const mc = r.machine;
  const st = r.settings;
  const stackInflate = stackS3 ? ok(stackS3.cr.runs.inflate) : [];
  const cpuS = (key: string) => (median(stackInflate.map((run) => Number(run.detail?.[key] ?? NaN))) / 1000).toFixed(2);
  const zlibNote = stackInflate.some((run) => run.detail?.zlibCpuMs !== undefined)
    ? `${cpuS('zlibCpuMs')} s of CPU for the stack corpus against libdeflate's ${cpuS('cpuMs')} s`
    : 'more CPU (not measured in this run)';

  const targets = [
    '| target | measured | |',
    '|---|---|---|',
    `| S3-like, stack: snaploader ≥ 4× faster than the seed | ${stackS3 ? `${x(stackS3.seedRatio)} (${s(stackS3.ms.ours)} s vs ${s(stackS3.ms.seed)} s)` : '–'} | ${pass(stackS3 ? stackS3.seedRatio >= 4 : null)} |`,
    `| S3-like, stack: within 1.3× of the limit | ${stackS3 ? `${x(stackS3.limitRatio)} (limit ${s(stackS3.limitMs)} s)` : '–'} | ${pass(stackS3 ? stackS3.limitRatio <= 1.3 : null)} |`,
    `| loopback: within 1.3× of the limit | stack ${stackLo ? x(stackLo.limitRatio) : '–'}; worst ${loopWorst ? `${x(loopWorst.limitRatio)} (${loopWorst.cr.corpus.label})` : '–'} | ${pass(loopWorst ? loopWorst.limitRatio <= 1.3 : null)} |`,
    `| init program peak RSS ≤ 200 MB at every size | largest ${worstRss ? `${(worstRss.oursPeakRss / MB).toFixed(0)} MB (${worstRss.cr.corpus.label}, ${profileName(worstRss.cr.profile)})` : '–'} | ${pass(worstRss ? worstRss.oursPeakRss <= 200 * MB : null)} |`,
    `| total memory ≤ unpacked + 250 MB | largest excess ${worstMem ? `${((worstMem.oursTotal - worstMem.cr.corpus.unpackedBytes) / MB).toFixed(0)} MB (${worstMem.cr.corpus.label}, ${profileName(worstMem.cr.profile)})` : '–'} | ${pass(worstMem ? worstMem.oursTotal <= worstMem.cr.corpus.unpackedBytes + MEMORY_ALLOWANCE : null)} |`,
    `| wrapper overhead ≤ 150 ms (empty archive) | ${Number.isNaN(ovMs('loopback')) ? '–' : `${ovMs('loopback').toFixed(0)} ms loopback, ${ovMs('s3like').toFixed(0)} ms S3-like`} | ${pass(Number.isNaN(ovMs('loopback')) ? null : Math.max(ovMs('loopback'), ovMs('s3like')) <= 150)} |`,
    `| preload library ≤ 5% on open+close of an unmapped path | ${pre ? `${preloadCost(pre.unmapped).toFixed(1)}%; ${preloadCost(pre.lookalike).toFixed(1)}% for one with a mapped path's lengths (same process; the method's own error ${Math.max(Math.abs(preloadControl(pre.unmapped)), Math.abs(preloadControl(pre.lookalike))).toFixed(1)}%)` : '–'} | ${pass(Number.isNaN(worstPrePct) ? null : worstPrePct <= 5)} |`,
  ].join('\n');

  const profileSection = (id: string, title: string) => {
    const rows = byProfile(id);
    return rows.length ? `### ${title}\n\n${timeTable(rows)}\n` : '';
  };

  const stillBusy = r.quietWaits.filter((w) => w.busy >= 0.1);
  const reps = r.corpora.length ? new Set(r.corpora.flatMap((c) => (c.runs.ours ?? []).map((_, i) => `${c.corpus.id}:${i}`))).size : 0;
  const waits = r.quietWaits.length
    ? `\n**Other load.** Before each repetition the harness waits up to 10 s for the machine to be quiet (under 10% of its CPU busy). ` +
      `Before ${r.quietWaits.length} of ${reps + 3} measurements it had to wait${stillBusy.length ? `, and ${stillBusy.length} started while other processes still kept up to ${Math.round(Math.max(...stillBusy.map((w) => w.busy)) * 100)}% of the CPU busy` : ''}. ` +
      'Every method of a repetition runs under the same conditions (they are interleaved), so the ratios are fairer than the absolute times; on a quiet machine every time is lower.\n'
    : '';

  const bigNote = sums.some((m) => m.cr.corpus.bigFiles.some((b) => b.concatenated))
    ? 'Files marked * were built by concatenating real shared libraries from the system library directory (so their compressibility is that of real machine code); the unmarked ones over 100 MB are real libraries of this machine.'
    : 'Every file is a real file of this machine.';

  return `# Benchmarks

${r.quick ? '> **Quick mode** (`BENCH_QUICK=1`): small corpora and one run; for a smoke check, not for numbers.\n\n' : ''}How long it takes, from a cold process, until every file of an archive is in place, with
snaploader and with what users do without it, on corpora built from real binaries, over a
local S3 with and without S3-like network shaping. Rerun with \`make bench\`
(\`BENCH_QUICK=1 make bench\` for a one-minute check). Measured ${r.date.slice(0, 16).replace('T', ' ')} UTC at \`${r.commit}\` (init.js sha256 \`${r.initSha}…\`), in ${r.wallMinutes} minutes.

**Machine:** ${mc.cores} cores (${mc.cpu}), ${mc.memoryGiB} GiB memory, Linux ${mc.kernel} (${mc.os}), Node ${mc.node}, Python ${mc.python}, Info-ZIP zip ${mc.zip} / unzip ${mc.unzip}, \`/tmp\` on ${mc.tmpFs}.
The local S3 server and the shaping proxy run on the same ${mc.cores} cores as the method being timed, which Lambda's network does not; the numbers are for this machine, not for Lambda.

## Against the targets

${targets}

Ratios are of medians. "Limit" is max(raw parallel GET, inflate-only CPU time ÷ ${mc.cores} cores).${r.inflateRemeasured ? ` The inflate-only figures come from a ${r.inflateRemeasured}.` : ''}

## Results

Times in seconds, medians of the runs: ${st.runs} per corpus, ${Math.min(Number(st.runs), Number(st.runs1G ?? st.runs))} for 1 GiB and ${Math.min(Number(st.runs), Number(st.runs2G ?? st.runs))} for 2 GiB
(\`BENCH_RUNS_1G\`/\`BENCH_RUNS_2G\` lower the last two for a quicker look). "runs" counts the successful snaploader runs, of how many were tried if some failed. Memory in MiB, the largest over the runs. "Init peak RSS" is
the init program's peak resident set; "total memory" is that plus the helper's peak RSS plus the
bytes in memfds, what the function's memory has to hold (an upper bound: the peaks need not
coincide); "seed total" is the seed's peak RSS plus its memfds. "seed ÷ snaploader" above 1 means
snaploader is faster; "snaploader ÷ limit" of 1 would be as fast as the network or the CPU allows.

${profileSection('s3like', `S3-like profile (${st.ttfbMs} ms to first byte, ${st.rateMBs} MB/s per connection)`)}
${profileSection('loopback', 'Loopback profile (no shaping)')}
${failures(r)}![time and memory against archive size](${opts.svgPath})

Left and middle: time against the size of the series corpora (unpacked), per method, with the
limit dashed. Right: memory under the S3-like profile (the loopback numbers are alike).

## Wrapper overhead and the preload library

- **Wrapper overhead**, empty archive (22 bytes, no entries), \`wrapper.sh /bin/true\` against a plain exec of \`/bin/true\`, median of ${st.overheadRuns} alternating runs:
${Object.entries(ov).map(([p, o]) => `  - ${p === 's3like' ? 'S3-like' : p}: ${s(median(o.wrapperMs))} s vs ${s(median(o.plainMs))} s: **${(median(o.wrapperMs) - median(o.plainMs)).toFixed(0)} ms** overhead (wrapper, helper, Node start, init program, one ranged GET, exec; a bare \`node -e 0\` takes ${s(median(o.nodeMs))} s here)${o.errors.length ? `; ${o.errors.length} runs failed: ${o.errors[0]}` : ''}`).join('\n') || '  - not measured'}
- **Preload library**, ${pre ? pre.mappings.toLocaleString('en-US') : 'N'} mappings loaded, \`open\`+\`close\` of an unmapped existing file. \`probe bench ${pre?.calls ?? 'N'} <path>\` (test/fixtures/preload/probe.c, built with zig cc) pins itself to one CPU and alternates 51 batches of calls through the \`open\` it links (the library's, when preloaded) with batches through libc's own \`open\` (looked up in libc.so.6, bypassing the library), and reports the median batch of each; the bench runs it ${st.preloadRuns} times with the library and ${st.preloadRuns} without, alternating. *Same process* is the median of the per-run difference; its *control*, the same comparison in the processes without the library (both calls libc's), is the method's own error. *Separate processes* compares the medians of the two kinds of run, which also carries the few-% differences between one process and the next.
${pre ? [
  { name: '`unmapped.txt`', x: pre.unmapped, why: 'no mapped path has a leaf of its length, so the first check turns it away: the best case' },
  { name: '`other/sub9/lib999.so`', x: pre.lookalike, why: "its last two components have the lengths of a mapped path's (`sub9/lib100.so`), so it is hashed and looked up, as most paths near a large archive's would be" },
].map(({ name, x, why }) => {
  return `  - ${name}: same process **${preloadCost(x).toFixed(1)}%** (${median(x.withLibcNs).toFixed(0)} → ${median(x.withNs).toFixed(0)} ns per call; control ${preloadControl(x).toFixed(1)}%); separate processes ${preloadAcross(x).toFixed(1)}% (${median(x.withoutNs).toFixed(0)} vs ${median(x.withNs).toFixed(0)} ns): ${why}`;
}).join('\n') +
  `\n  - a mapped path (redirected) ${median(pre.mappedNs).toFixed(0)} ns` : '  - not measured'}

## Corpora

${corpusTable(r)}

Sizes of the files over 100 MB in MiB. ${bigNote} The rest: shared libraries of 1–100 MB
from the system library directory, and small files (under 1 MiB) spread evenly over the
system Python's packages and standard library (\`.py\`, \`.pyc\`, extension modules, data) and
the small shared libraries; a corpus that needs more small or medium files than the machine has
uses them again under \`copyN/\`. The stack corpus has the shape of an ML stack (60% of the
bytes in a few files over 100 MB, a few dozen of 1–100 MB, ~3,000 in all); the size series
scales the same shape to 0.25, 0.5, 1 and 2 GiB. Zipped with Info-ZIP \`zip -r -X\` (deflate
level 6, its default; \`-0\` for stored). Built by \`bench/corpus.ts\` and cached under
\`.cache/bench/\` by recipe version, so reruns on this machine use the same archives.

## Methods

Each run starts a fresh process and ends when it exits; methods run one at a time, and every
repetition runs all of them in turn (snaploader, seed, download + unzip, raw GET per profile,
then inflate-only), so drift touches all alike. Between runs \`sync\` is run (not timed), and the
previous run's files are moved aside and truncated to nothing, not deleted (they are deleted
with the scratch directory at the end). This \`/tmp\` is ext4 without a journal, which skips
inodes freed in the last 60 s when it allocates new ones: deleting a run's thousands of files
right before the next run made that run's file creation walk past them (~0.5 s of 3 s on the
stack corpus, for snaploader and unzip alike), which a cold Lambda sandbox, with its fresh
\`/tmp\`, never pays; truncated, they hold neither disk nor page cache that would squeeze the
memory of the methods after them. The object is in the page cache of the S3 server.

- **snaploader**: \`wrapper.sh /bin/true\` from a private copy of \`build/x86_64/opt\` (what \`make build-x86_64\` leaves) with \`SNAPLOADER_BUCKET\`/\`KEY\`,
  \`AWS_ENDPOINT_URL_S3\` pointing at the profile's endpoint, a fresh \`SNAPLOADER_TARGET_DIR\`
  per run, \`AWS_LAMBDA_FUNCTION_MEMORY_SIZE=10240\` (so the memory budget does not bind),
  \`SNAPLOADER_TMP_BUDGET=4G\`, \`SNAPLOADER_TIMEOUT=120\` (an on-demand init's 9 s would cut the
  large corpora short), every other setting at its default (here ${st.concurrency} GETs of ${st.rangeMiB} MiB in
  flight, memfds for files of 1 MiB or more, at most 512). A function of 10,240 MB has 6 vCPUs
  and the engine sizes its connections and threads for them, although this machine has ${mc.cores} cores. The whole real path: bash wrapper,
  static helper, Node init program, memfds and the tree, then the helper execs \`/bin/true\`.
  The run must report every file loaded. Memory: every ${st.sampleMs} ms the harness reads the helper's
  \`VmRSS\` and its memfd descriptors' sizes, and the init program's \`VmHWM\` (the last sample
  before it exits: at most ${st.sampleMs} ms of growth can be missed).
- **seed** (\`bench/seed.py\`), what the prior tool does: one GET of the whole object into memory
  (Python \`urllib\`, unsigned: the local S3 allows anonymous reads), \`zipfile\` over it, every
  entry read into a dict, every \`.so\`/\`.so.N\` entry copied into a memfd. Memory is its
  \`ru_maxrss\` plus the memfd bytes.
- **download + unzip** (\`bench/download_unzip.py\`): one GET streamed to a file in \`/tmp\`, then
  \`unzip -q\` into a directory.
- **raw parallel GET** (\`bench/raw-get.mjs\`): the whole object in ${st.rangeMiB} MiB ranged GETs, ${st.concurrency} in
  flight (what the engine's own configuration code picks for the runs above), bodies discarded:
  what the network alone allows.
- **inflate only** (\`bench/inflate-only.ts\`): the CPU time of inflating every entry with the
  engine's own inflater (libdeflate, through the layer's native extractor, one entry at a time
  into fresh memory, which is then written to \`/dev/null\`) from a local copy, divided by the
  ${mc.cores} cores: what the CPU alone allows, faulting in the memory the output needs included
  (the engine has to put every byte in memory too).
  Zero for the stored corpus. (Node's zlib, which the engine used before, needs ${zlibNote}.)

## Network profiles

- **loopback**: s3rver (the S3-compatible server the tests use) on 127.0.0.1, no shaping.
- **S3-like**: \`bench/shaping-proxy.mjs\`, a TCP proxy in front of the same server, reached
  through \`AWS_ENDPOINT_URL_S3\`. It forwards bytes unchanged both ways; per TCP connection it
  holds the first byte of every response until ${st.ttfbMs} ms after the request started (S3's
  published first-byte latency; a new request is recognised as the client speaking after the
  previous response) and sends the server's bytes through a token bucket of ${st.rateMBs} MB/s
  (S3's published per-connection throughput), emptied at the start of every response so an idle
  connection banks no head start. More connections get more bandwidth, as on S3, so the
single-GET methods (seed, download + unzip) get ${st.rateMBs} MB/s and the engine and the raw GET up to
${st.concurrency} × ${st.rateMBs} MB/s. The first-byte delay applies to every request (S3's latency is per request), which
is stricter on methods that make many requests than delaying only a connection's first response.
${waits}
## Running it

- \`make bench\` (\`node bench/run.mjs\` after \`make build-x86_64\`): everything, ~20–25 minutes on
  2 cores, plus ~5 minutes the first time to build the corpora (cached in \`.cache/bench/\`; the
  local S3's objects too). Rewrites this file, \`bench/results/results.json\` (every run's numbers)
  and \`bench/results/scaling.svg\`.
- \`BENCH_QUICK=1 make bench\`: corpora of 32–128 MiB, one run, results in \`.cache/bench/quick/\`
  (this file is left alone).
- \`BENCH_ONLY=stack,series,overhead,preload\` (any subset), \`BENCH_RUNS=N\` (also
  \`BENCH_RUNS_1G\`, \`BENCH_RUNS_2G\`), \`BENCH_OPT=<dir>\` (another build of the layer's \`/opt\`;
  the harness measures a private copy of it, so a rebuild during a run changes nothing),
  \`BENCH_RENDER=1\` (rewrite this file and the plot from the last results.json).
- The proxy also works alone: \`node bench/shaping-proxy.mjs --upstream 127.0.0.1:<port>\`
  [\`--ttfb-ms 20\`] [\`--rate-mbs 90\`] [\`--ttfb-per request|connection\`] prints \`{"port":N}\`.
`;
}

// ---------------------------------------------------------------- the plot

const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');

interface Series {
  label: string;
  color: string;
  dash?: string;
  points: [number, number][];
}

function panel(x0: number, y0: number, w: number, h: number, title: string, yLabel: string, xs: number[], series: Series[]): string {
  const out: string[] = [];
  const pad = { l: 56, r: 22, t: 28, b: 40 };
  const pw = w - pad.l - pad.r;
  const ph = h - pad.t - pad.b;
  const lx = (v: number) => Math.log2(v);
  const xmin = lx(Math.min(...xs));
  const xmax = lx(Math.max(...xs));
  const ymaxRaw = Math.max(1e-9, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const step = niceStep(ymaxRaw / 5);
  const ymax = Math.ceil(ymaxRaw / step) * step;
  const px = (v: number) => x0 + pad.l + ((lx(v) - xmin) / Math.max(1e-9, xmax - xmin)) * pw;
  const py = (v: number) => y0 + pad.t + ph - (v / ymax) * ph;
  out.push(`<text x="${x0 + pad.l}" y="${y0 + 18}" font-size="13" font-weight="bold">${esc(title)}</text>`);
  for (let v = 0; v <= ymax + 1e-9; v += step) {
    out.push(`<line x1="${x0 + pad.l}" x2="${x0 + pad.l + pw}" y1="${py(v)}" y2="${py(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${x0 + pad.l - 6}" y="${py(v) + 4}" font-size="11" text-anchor="end">${+v.toFixed(2)}</text>`);
  }
  for (const v of xs) {
    out.push(`<line x1="${px(v)}" x2="${px(v)}" y1="${y0 + pad.t}" y2="${y0 + pad.t + ph}" stroke="#eee"/>`);
    out.push(`<text x="${px(v)}" y="${y0 + pad.t + ph + 16}" font-size="11" text-anchor="middle">${v}</text>`);
  }
  out.push(`<text x="${x0 + pad.l + pw / 2}" y="${y0 + h - 6}" font-size="11" text-anchor="middle">archive size, GiB unpacked</text>`);
  out.push(`<text transform="translate(${x0 + 14},${y0 + pad.t + ph / 2}) rotate(-90)" font-size="11" text-anchor="middle">${esc(yLabel)}</text>`);
  out.push(`<rect x="${x0 + pad.l}" y="${y0 + pad.t}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    for (const p of s.points) out.push(`<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3" fill="${s.color}"/>`);
  }
  series.forEach((s, i) => {
    const ly = y0 + pad.t + 14 + i * 15;
    const lx0 = x0 + pad.l + 8;
    out.push(`<line x1="${lx0}" x2="${lx0 + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(`<text x="${lx0 + 24}" y="${ly}" font-size="11">${esc(s.label)}</text>`);
  });
  return out.join('\n');
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

const COLORS: Record<string, string> = { ours: '#d62728', seed: '#1f77b4', unzip: '#2ca02c', limit: '#7f7f7f' };

export function renderSvg(r: Results): string | null {
  const series = r.corpora.filter((c) => c.corpus.kind === 'series').map(summarise);
  if (series.length === 0) return null;
  const gib = (m: Summary) => +(m.cr.corpus.unpackedBytes / 2 ** 30).toFixed(3);
  const xs = [...new Set(series.map(gib))].sort((a, b) => a - b);
  const timeSeries = (profile: string): Series[] => {
    const rows = series.filter((m) => m.cr.profile === profile).sort((a, b) => gib(a) - gib(b));
    const line = (label: string, color: string, f: (m: Summary) => number | undefined, dash?: string): Series => ({
      label, color, dash, points: rows.filter((m) => Number.isFinite(f(m) ?? NaN)).map((m) => [gib(m), f(m)! / 1000] as [number, number]),
    });
    return [
      line('snaploader', COLORS.ours, (m) => m.ms.ours),
      line('seed', COLORS.seed, (m) => m.ms.seed),
      line('download + unzip', COLORS.unzip, (m) => m.ms.unzip),
      line('limit', COLORS.limit, (m) => m.limitMs, '5,4'),
    ];
  };
  const s3 = series.filter((m) => m.cr.profile === 's3like').sort((a, b) => gib(a) - gib(b));
  const memLine = (label: string, color: string, f: (m: Summary) => number, dash?: string): Series => ({
    label, color, dash, points: s3.filter((m) => f(m) > 0).map((m) => [gib(m), f(m) / 2 ** 30] as [number, number]),
  });
  const mem: Series[] = [
    memLine('snaploader: init program peak RSS', COLORS.ours, (m) => m.oursPeakRss, '2,3'),
    memLine('snaploader: total (RSS + memfds)', COLORS.ours, (m) => m.oursTotal),
    memLine('seed: peak RSS + memfds', COLORS.seed, (m) => m.seedTotal),
    memLine('unpacked + 250 MB', COLORS.limit, (m) => m.cr.corpus.unpackedBytes + MEMORY_ALLOWANCE, '5,4'),
  ];
  const W = 420;
  const H = 300;
  const body = [
    panel(0, 0, W, H, 'Time, S3-like profile', 'seconds', xs, timeSeries('s3like')),
    panel(W, 0, W, H, 'Time, loopback', 'seconds', xs, timeSeries('loopback')),
    panel(2 * W, 0, W, H, 'Memory, S3-like profile', 'GiB', xs, mem),
  ].join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${3 * W}" height="${H}" viewBox="0 0 ${3 * W} ${H}" font-family="Helvetica, Arial, sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
${body}
</svg>
`;
}
