/**
 * Waiting for a quiet machine before a measurement, so that another job's burst does not land
 * in one method's run. Every wait over a second is recorded in the results.
 */
import { readFileSync } from 'node:fs';
import type { Results } from './result-types';

function cpuTimes(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (up to `maxMs`) until less than 10% of the machine's CPU is busy over 300 ms. */
export async function waitQuiet(results: Results, before: string, maxMs: number): Promise<void> {
  const t0 = performance.now();
  let busy = 1;
  while (performance.now() - t0 < maxMs) {
    const a = cpuTimes();
    await sleep(300);
    const b = cpuTimes();
    busy = (b.busy - a.busy) / Math.max(1, b.total - a.total);
    if (busy < 0.1) break;
  }
  const waitedMs = Math.round(performance.now() - t0);
  if (waitedMs > 1000) results.quietWaits.push({ before, waitedMs, busy: Math.round(busy * 100) / 100 });
}
