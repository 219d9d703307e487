/**
 * BENCHMARKS.md from the results: the targets, the tables (bench/report-tables.ts), and the
 * description of the corpora and methods (bench/report-methods.ts).
 */
import { methodsSection } from './report-methods';
import { failures, kernelTable, oneCoreTable, profileName, s, timeTable, x } from './report-tables';
import { preloadAcross, preloadControl, preloadCost } from './preload-stats';
import type { Results } from './result-types';
import { median } from './stats';
import { MEMORY_ALLOWANCE, ok, summarise, Summary } from './summary';

const MB = 1e6;
const pass = (yes: boolean | null): string => (yes === null ? 'n/a' : yes ? 'met' : '**not met**');

export function renderMarkdown(r: Results, opts: { svgPath: string }): string {
  const cores = Number(r.machine.cores);
  const sums = r.corpora.map((cr) => summarise(cr, cores));
  const twin = (cr: Results['corpora'][number]) => r.corpora.find((o) => o.corpus.id === cr.corpus.id && o.profile === cr.profile) ?? cr;
  const ones = (r.oneCore ?? []).map((cr) => summarise(cr, 1, twin(cr)));
  const byProfile = (p: string) => sums.filter((m) => m.cr.profile === p);
  const stackS3 = sums.find((m) => m.cr.profile === 's3like' && m.cr.corpus.kind === 'stack' && m.cr.corpus.method === 'deflate');
  const oursOk = [...sums, ...ones].filter((m) => m.n.ours);
  const worst = (list: Summary[], f: (m: Summary) => number): Summary | null =>
    list.filter((m) => Number.isFinite(f(m))).reduce<Summary | null>((w, m) => (!w || f(m) > f(w) ? m : w), null);
  const least = (list: Summary[], f: (m: Summary) => number) => worst(list, (m) => -f(m));
  const worstRss = worst(oursOk, (m) => m.oursPeakRss);
  const worstMem = worst(sums.filter((m) => m.n.ours), (m) => m.oursTotal - m.cr.corpus.unpackedBytes);
  const worstFaults = worst(oursOk, (m) => m.kernel.ours?.minflt ?? NaN);
  const worstSys = worst(oursOk, (m) => (m.kernel.ours ? m.kernel.ours.sysMs / m.kernel.ours.userMs : NaN));
  const deflated = (list: Summary[]) => list.filter((m) => m.cr.corpus.method === 'deflate' && m.n.ours);
  const stored = (list: Summary[]) => list.filter((m) => m.cr.corpus.method === 'store' && m.n.ours);
  const loSeed = least(deflated(byProfile('loopback')), (m) => m.seedRatio);
  const oneSeed = least(deflated(ones), (m) => m.seedRatio);
  const storedWorst = least([...stored(sums), ...stored(ones)], (m) => m.seedRatio);
  const stacksS3 = byProfile('s3like').filter((m) => m.cr.corpus.kind !== 'series' && m.cr.corpus.method === 'deflate' && m.n.ours);
  const stackSeed = least(stacksS3, (m) => m.seedRatio);
  const limitWorst = (p: string) => worst(byProfile(p).filter((m) => m.n.ours), (m) => m.limitRatio);
  const where = (m: Summary, oneCore = false) => `${m.cr.corpus.label}, ${profileName(m.cr.profile)}${oneCore || m.cr.runs.ours?.[0]?.cpus ? ', 1 core' : ''}`;
  const ratioCell = (m: Summary | null, f: (m: Summary) => number, extra = '') => (m ? `${x(f(m))} (${where(m)})${extra}` : '–');
  /** How many of `list` the limit itself leaves room for `need`× over the seed (seed ÷ limit). */
  const room = (list: Summary[], need: number) => {
    const fit = list.filter((m) => Number.isFinite(m.ceilingRatio));
    const tight = least(fit, (m) => m.ceilingRatio);
    return tight ? `; the limit itself is ≥ ${need}× the seed on ${fit.filter((m) => m.ceilingRatio >= need).length} of ${fit.length} (smallest seed ÷ limit ${x(tight.ceilingRatio)}, ${where(tight)})` : '';
  };
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

  const loLimit = limitWorst('loopback');
  const s3Limit = limitWorst('s3like');
  const faults = worstFaults?.kernel.ours?.minflt;
  const sysUser = worstSys?.kernel.ours ? worstSys.kernel.ours.sysMs / worstSys.kernel.ours.userMs : NaN;
  const targets = [
    '| target | measured | |',
    '|---|---|---|',
    `| minor page faults ≤ 50,000 per load at every size (snaploader) | largest ${worstFaults ? `${Math.round(faults!).toLocaleString('en-US')} (${where(worstFaults)})` : '–'} | ${pass(worstFaults ? faults! <= 50_000 : null)} |`,
    `| sys ≤ user ÷ 3 (snaploader) | largest sys ÷ user ${worstSys ? `${sysUser.toFixed(2)} (${where(worstSys)})` : '–'} | ${pass(worstSys ? sysUser <= 1 / 3 : null)} |`,
    `| loopback, ${cores} cores: snaploader ≥ 3× the seed on every deflated corpus | smallest ${ratioCell(loSeed, (m) => m.seedRatio)}${room(deflated(byProfile('loopback')), 3)} | ${pass(loSeed ? loSeed.seedRatio >= 3 : null)} |`,
    `| loopback, 1 core: snaploader ≥ 3× the seed on every deflated corpus | smallest ${ratioCell(oneSeed, (m) => m.seedRatio)}${room(deflated(ones), 3)} | ${pass(oneSeed ? oneSeed.seedRatio >= 3 : null)} |`,
    `| stored archives: never slower than the seed (every profile, ${cores} cores and 1 core) | smallest ${ratioCell(storedWorst, (m) => m.seedRatio)} | ${pass(storedWorst ? storedWorst.seedRatio >= 1 : null)} |`,
    `| S3-like: snaploader ≥ 4× the seed on the stack corpora | smallest ${ratioCell(stackSeed, (m) => m.seedRatio)}${stackS3 ? `; stack ${s(stackS3.ms.ours)} s vs ${s(stackS3.ms.seed)} s` : ''}${room(stacksS3, 4)} | ${pass(stackSeed ? stackSeed.seedRatio >= 4 : null)} |`,
    `| S3-like: within 1.5× of the limit | largest ${ratioCell(s3Limit, (m) => m.limitRatio, s3Limit ? `; ${x(s3Limit.oldLimitRatio)} of the inflate-only limit` : '')} | ${pass(s3Limit ? s3Limit.limitRatio <= 1.5 : null)} |`,
    `| loopback: within 1.5× of the limit | largest ${ratioCell(loLimit, (m) => m.limitRatio, loLimit ? `; ${x(loLimit.oldLimitRatio)} of the inflate-only limit` : '')} | ${pass(loLimit ? loLimit.limitRatio <= 1.5 : null)} |`,
    `| init program peak RSS ≤ 200 MB at every size | largest ${worstRss ? `${(worstRss.oursPeakRss / MB).toFixed(0)} MB (${where(worstRss)})` : '–'} | ${pass(worstRss ? worstRss.oursPeakRss <= 200 * MB : null)} |`,
    `| total memory ≤ unpacked + 250 MB | largest excess ${worstMem ? `${((worstMem.oursTotal - worstMem.cr.corpus.unpackedBytes) / MB).toFixed(0)} MB (${where(worstMem)})` : '–'} | ${pass(worstMem ? worstMem.oursTotal <= worstMem.cr.corpus.unpackedBytes + MEMORY_ALLOWANCE : null)} |`,
    `| wrapper overhead ≤ 150 ms (empty archive) | ${Number.isNaN(ovMs('loopback')) ? '–' : `${ovMs('loopback').toFixed(0)} ms loopback, ${ovMs('s3like').toFixed(0)} ms S3-like`} | ${pass(Number.isNaN(ovMs('loopback')) ? null : Math.max(ovMs('loopback'), ovMs('s3like')) <= 150)} |`,
    `| preload library ≤ 5% on open+close of an unmapped path | ${pre ? `${preloadCost(pre.unmapped).toFixed(1)}%; ${preloadCost(pre.lookalike).toFixed(1)}% for one with a mapped path's lengths (same process; the method's own error ${Math.max(Math.abs(preloadControl(pre.unmapped)), Math.abs(preloadControl(pre.lookalike))).toFixed(1)}%)` : '–'} | ${pass(Number.isNaN(worstPrePct) ? null : worstPrePct <= 5)} |`,
    "| README's headline quotes these ratios, the 1-core one included | written by hand from a full run | n/a |",
  ].join('\n');

  const profileSection = (id: string, title: string) => {
    const rows = byProfile(id);
    return rows.length ? `### ${title}\n\n${timeTable(rows)}\n\nWhat the kernel counted (medians; wait4's rusage of the process and the descendants it reaped):\n\n${kernelTable(rows)}\n` : '';
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
(\`BENCH_QUICK=1 make bench\` for a one-minute check). Measured ${r.date.slice(0, 16).replace('T', ' ')} UTC at \`${r.commit}\` (init-main.js sha256 \`${r.initSha}…\`), in ${r.wallMinutes} minutes.

**Machine:** ${mc.cores} cores (${mc.cpu}), ${mc.memoryGiB} GiB memory, Linux ${mc.kernel} (${mc.os}), Node ${mc.node} (the Node layer's: the engine, the raw GET and the inflate floor run on it), Python ${mc.python}, Info-ZIP zip ${mc.zip} / unzip ${mc.unzip}, \`/tmp\` on ${mc.tmpFs}.
The local S3 server and the shaping proxy run on the same ${mc.cores} cores as the method being timed, which Lambda's network does not; the numbers are for this machine, not for Lambda.

## Against the targets

${targets}

Ratios are of medians. "Limit" is max(raw parallel GET, (inflate-only CPU + the CPU the S3 server and the shaping proxy used during snaploader's runs + the write-only floor's CPU) ÷ ${mc.cores} cores); at 1 core, max(raw parallel GET at 1 core, inflate-only CPU + write-only floor CPU). "Limit (inflate only)" is the former max(raw parallel GET, inflate-only CPU ÷ ${mc.cores} cores), reported beside it. "Seed ÷ limit" is the most any method could be faster than the seed here, running at the limit itself: where it is below a target's ratio, that target cannot be met on this machine by making snaploader faster.${r.inflateRemeasured ? ` The inflate-only figures come from a ${r.inflateRemeasured}.` : ''}

## Results

Times in seconds, medians of the runs: ${st.runs} per corpus, ${Math.min(Number(st.runs), Number(st.runs1G ?? st.runs))} for 1 GiB and ${Math.min(Number(st.runs), Number(st.runs2G ?? st.runs))} for 2 GiB
(\`BENCH_RUNS_1G\`/\`BENCH_RUNS_2G\` lower the last two for a quicker look). "runs" counts the successful snaploader runs, of how many were tried if some failed. Memory in MiB, the largest over the runs. "Init peak RSS" is
the init program's peak resident set; "total memory" is that plus the helper's peak RSS plus the
bytes in memfds, what the function's memory has to hold (an upper bound: the peaks need not
coincide); "seed total" is the seed's peak RSS plus its memfds. "seed ÷ snaploader" above 1 means
snaploader is faster; "snaploader ÷ limit" of 1 would be as fast as the network or the CPU allows.
"Inflate CPU", "write floor CPU" and "servers CPU" are CPU times (all cores together), not wall times.

${profileSection('s3like', `S3-like profile (${st.ttfbMs} ms to first byte, ${st.rateMBs} MB/s per connection)`)}
${profileSection('loopback', 'Loopback profile (no shaping)')}
${ones.length ? `### Loopback at 1 core\n\nThe measured process pinned to CPU 0 (snaploader with \`AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769\`, so it sizes itself for one vCPU), the S3 server to CPU 1. Limit: max(raw parallel GET at 1 core, inflate-only CPU + write-only floor CPU at 1 core); the S3 server's CPU is not counted, as S3 runs elsewhere on Lambda.\n\n${oneCoreTable(ones)}\n` : ''}
${failures(r)}![time and memory against archive size](${opts.svgPath})

Left and middle: time against the size of the series corpora (unpacked), per method, with the
limit dashed. Right: memory under the S3-like profile (the loopback numbers are alike).

## Wrapper overhead and the preload library

- **Wrapper overhead**, empty archive (22 bytes, no entries), \`wrapper.sh /bin/true\` against a plain exec of \`/bin/true\`, median of ${st.overheadRuns} alternating runs:
${Object.entries(ov).map(([p, o]) => `  - ${p === 's3like' ? 'S3-like' : p}: ${s(median(o.wrapperMs))} s vs ${s(median(o.plainMs))} s: **${(median(o.wrapperMs) - median(o.plainMs)).toFixed(0)} ms** overhead (wrapper, helper, Node start, init program compiled from the layer's code cache, one ranged GET, exec; a bare \`node -e 0\` of the same Node takes ${s(median(o.nodeMs))} s here)${o.errors.length ? `; ${o.errors.length} runs failed: ${o.errors[0]}` : ''}`).join('\n') || '  - not measured'}
- **Preload library**, ${pre ? pre.mappings.toLocaleString('en-US') : 'N'} mappings loaded, \`open\`+\`close\` of an unmapped existing file. \`probe bench ${pre?.calls ?? 'N'} <path>\` (test/fixtures/preload/probe.c, built with zig cc) pins itself to one CPU and alternates 51 batches of calls through the \`open\` it links (the library's, when preloaded) with batches through libc's own \`open\` (looked up in libc.so.6, bypassing the library), and reports the median batch of each; the bench runs it ${st.preloadRuns} times with the library and ${st.preloadRuns} without, alternating. *Same process* is the median of the per-run difference; its *control*, the same comparison in the processes without the library (both calls libc's), is the method's own error. *Separate processes* compares the medians of the two kinds of run, which also carries the few-% differences between one process and the next.
${pre ? [
  { name: '`unmapped.txt`', x: pre.unmapped, why: 'no mapped path has a leaf of its length, so the first check turns it away: the best case' },
  { name: '`other/sub9/lib999.so`', x: pre.lookalike, why: "its last two components have the lengths of a mapped path's (`sub9/lib100.so`), so it is hashed and looked up, as most paths near a large archive's would be" },
].map(({ name, x, why }) => {
  return `  - ${name}: same process **${preloadCost(x).toFixed(1)}%** (${median(x.withLibcNs).toFixed(0)} → ${median(x.withNs).toFixed(0)} ns per call; control ${preloadControl(x).toFixed(1)}%); separate processes ${preloadAcross(x).toFixed(1)}% (${median(x.withoutNs).toFixed(0)} vs ${median(x.withNs).toFixed(0)} ns): ${why}`;
}).join('\n') +
  `\n  - a mapped path (redirected) ${median(pre.mappedNs).toFixed(0)} ns` : '  - not measured'}

${methodsSection(r, zlibNote, waits, bigNote)}`;
}
