/**
 * The preload library's cost from the probe's samples (see benchPreload in bench/main.ts).
 */
import type { PreloadSample } from './result-types';
import { median } from './stats';

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
