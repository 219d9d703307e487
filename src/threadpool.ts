/**
 * Sizes libuv's threadpool, where inflating, writing and creating files run. It must happen
 * before the first use of the pool (libuv reads UV_THREADPOOL_SIZE once, lazily), so
 * main.ts calls sizeThreadpool() at its very start. A value the user set wins.
 */
import { availableParallelism } from 'node:os';

/** vCPUs Lambda gives this function: one per 1,769 MB of memory, at most 6. */
export function lambdaVcpus(env: Record<string, string | undefined>): number {
  const mb = Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  if (Number.isFinite(mb) && mb > 0) return Math.min(6, Math.max(1, Math.ceil(mb / 1769)));
  return availableParallelism();
}

/** Sets UV_THREADPOOL_SIZE unless the user did; main.ts calls it before anything uses the pool. */
export function sizeThreadpool(env: Record<string, string | undefined>): void {
  // Two jobs per core keeps every core busy while some jobs wait on page faults or the disk.
  env.UV_THREADPOOL_SIZE ??= String(Math.min(16, Math.max(4, 2 * lambdaVcpus(env))));
}
