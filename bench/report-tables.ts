/**
 * The tables of BENCHMARKS.md: corpora, times and limits per profile, the kernel's numbers
 * per method, the 1-core runs, and the failed runs.
 */
import { MiB } from './corpus';
import { METHOD_LABELS, MethodId, RunResult } from './methods';
import type { Results } from './result-types';
import { MEMORY_ALLOWANCE, Summary } from './summary';

export const profileName = (id: string): string => (id === 's3like' ? 'S3-like' : id);
export const s = (ms: number | undefined): string => (ms === undefined || Number.isNaN(ms) ? '–' : (ms / 1000).toFixed(2));
export const x = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(2)}×` : '–');
export const mib = (b: number): string => (b > 0 ? `${(b / MiB).toFixed(0)}` : '–');
const count = (n: number | undefined): string => (n === undefined || Number.isNaN(n) ? '–' : Math.round(n).toLocaleString('en-US'));

function runs(m: Summary): string {
  const tried = m.cr.runs.ours?.length ?? 0;
  return `${m.n.ours ?? 0}${tried !== (m.n.ours ?? 0) ? ` of ${tried}` : ''}`;
}

export function corpusTable(r: Results): string {
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

export function timeTable(sums: Summary[]): string {
  const rows = [
    '| corpus | runs | snaploader | seed | download + unzip | raw parallel GET | inflate CPU | write floor CPU | servers CPU | limit (inflate only) | limit | seed ÷ snaploader | seed ÷ limit | snaploader ÷ limit (inflate only) | snaploader ÷ limit | init peak RSS | total memory | unpacked + 250 MB | seed total |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const m of sums) {
    const c = m.cr.corpus;
    rows.push(`| ${c.label} | ${runs(m)} | ${s(m.ms.ours)} | ${s(m.ms.seed)} | ${s(m.ms.unzip)} | ${s(m.ms.raw)} | ${s(m.inflateCpuMs)} | ${s(m.writeCpuMs)} | ${s(m.serverCpuMs)} | ${s(m.oldLimitMs)} | ${s(m.limitMs)} | ` +
      `${x(m.seedRatio)} | ${x(m.ceilingRatio)} | ${x(m.oldLimitRatio)} | ${x(m.limitRatio)} | ${mib(m.oursPeakRss)} | ${mib(m.oursTotal)} | ${mib(c.unpackedBytes + MEMORY_ALLOWANCE)} | ${mib(m.seedTotal)} |`);
  }
  return rows.join('\n');
}

const KERNEL_METHODS: MethodId[] = ['ours', 'seed', 'unzip', 'raw', 'inflate', 'write'];

/** Per corpus and method: medians of what wait4 counted (bench/rusage-run.c). */
export function kernelTable(sums: Summary[]): string {
  const rows = [
    '| corpus | method | minor faults | major faults | user s | sys s | sys ÷ user | voluntary cs | involuntary cs |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const m of sums) {
    for (const id of KERNEL_METHODS) {
      const k = m.kernel[id];
      if (!k) continue;
      rows.push(`| ${m.cr.corpus.label} | ${METHOD_LABELS[id]} | ${count(k.minflt)} | ${count(k.majflt)} | ${s(k.userMs)} | ${s(k.sysMs)} | ${k.userMs >= 10 ? (k.sysMs / k.userMs).toFixed(2) : '–'} | ${count(k.nvcsw)} | ${count(k.nivcsw)} |`);
    }
  }
  return rows.join('\n');
}

export function oneCoreTable(sums: Summary[]): string {
  const rows = [
    '| corpus | runs | snaploader | seed | raw parallel GET | inflate CPU | write floor CPU | limit | seed ÷ snaploader | seed ÷ limit | snaploader ÷ limit | snaploader user s | sys s | minor faults | seed minor faults |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const m of sums) {
    const k = m.kernel.ours;
    rows.push(`| ${m.cr.corpus.label} | ${runs(m)} | ${s(m.ms.ours)} | ${s(m.ms.seed)} | ${s(m.ms.raw)} | ${s(m.inflateCpuMs)} | ${s(m.writeCpuMs)} | ${s(m.limitMs)} | ${x(m.seedRatio)} | ${x(m.ceilingRatio)} | ${x(m.limitRatio)} | ` +
      `${s(k?.userMs)} | ${s(k?.sysMs)} | ${count(k?.minflt)} | ${count(m.kernel.seed?.minflt)} |`);
  }
  return rows.join('\n');
}

export function failures(r: Results): string {
  const lines: string[] = [];
  const all = [...r.corpora.map((cr) => ({ cr, where: profileName(cr.profile) })), ...(r.oneCore ?? []).map((cr) => ({ cr, where: 'loopback, 1 core' }))];
  for (const { cr, where } of all) {
    for (const [method, list] of Object.entries(cr.runs) as [MethodId, RunResult[]][]) {
      list.forEach((run, i) => {
        // inflate and write runs are shared by the profiles: listed once.
        if (!run.ok && !((method === 'inflate' || method === 'write') && cr.profile !== r.profiles[0]?.id && !run.cpus)) {
          lines.push(`- ${cr.corpus.label}, ${where}, ${METHOD_LABELS[method]}, run ${i + 1}: after ${s(run.ms)} s: \`${(run.error ?? 'failed').replace(/`/g, "'")}\``);
        }
      });
    }
  }
  return lines.length ? `**Failed runs** (left out of the medians):\n\n${lines.join('\n')}\n\n` : '';
}
