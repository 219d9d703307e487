/**
 * The scaling plot of BENCHMARKS.md (bench/results/scaling.svg), a hand-written SVG: time
 * against the series corpora's size per profile, and memory under the S3-like profile.
 */
import type { Results } from './result-types';
import { MEMORY_ALLOWANCE, summarise, Summary } from './summary';

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
  const series = r.corpora.filter((c) => c.corpus.kind === 'series').map((cr) => summarise(cr, Number(r.machine.cores)));
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
