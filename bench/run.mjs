#!/usr/bin/env node
// `make bench`: bundles the harness (TypeScript, bench/*.ts) with esbuild into build/bench/
// and runs it. BENCH_QUICK=1 for a one-minute check; see bench/main.ts for the other knobs.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(ROOT, 'build', 'bench');
await build({
  entryPoints: [join(ROOT, 'bench', 'main.ts'), join(ROOT, 'bench', 'inflate-only.ts')],
  outdir: out,
  bundle: true,
  packages: 'external',
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'warning',
});
const r = spawnSync(process.execPath, [join(out, 'main.js')], { stdio: 'inherit' });
process.exit(r.status ?? 1);
