/**
 * The corpus part of the benchmark: every method on every corpus and profile, interleaved per
 * repetition, then the CPU-only methods (inflate-only, the write-only floor), then the 1-core
 * runs (loopback, every deflated corpus and the stored stack): the engine sized for one vCPU,
 * the seed and the raw GET pinned to CPU 0, the S3 server pinned to CPU 1.
 */
import { join } from 'node:path';
import { Corpus, MiB } from './corpus';
import { FloorManifest, writeFloorManifest } from './floor-manifest';
import { Ctx, emptyTrashIfFull, oursEnv, runInflate, runOurs, runRaw, runSeed, runUnzip, RunResult, runWrite, settle } from './methods';
import type { CorpusResult, Results } from './result-types';
import { pinProcess } from './server-cpu';
import { ensureObject, Profile } from './servers';

/** A function below 1,769 MB has one vCPU: the engine sizes itself for it from this. */
export const ONE_CORE_MEMORY_MB = '1769';
const ONE_CORE_ENV = { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: ONE_CORE_MEMORY_MB };

export interface CorpusRunOptions {
  runsFor: (c: Corpus) => number;
  quiet: (before: string) => Promise<void>;
  say: (s: string) => void;
}

const fmtS = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

function describe(r: RunResult): string {
  if (!r.ok) return ` FAILED: ${r.error}`;
  const k = r.kernel;
  return (r.peakRssKiB ? `, peak RSS ${(r.peakRssKiB / 1024).toFixed(0)} MiB` : '') + (r.totalBytes ? `, total ${(r.totalBytes / MiB).toFixed(0)} MiB` : '') +
    (k ? `, user ${fmtS(k.userMs)} sys ${fmtS(k.sysMs)}, ${k.minflt} minor faults` : '') +
    (r.servers ? `, servers ${fmtS(r.servers.s3Ms + r.servers.proxyMs)} CPU` : '');
}

/** The 1-core runs of one corpus need the engine's placement for a 1,769 MB function. */
async function manifests(ctx: Ctx, c: Corpus, profile: Profile): Promise<{ all: FloorManifest; oneCore: FloorManifest }> {
  const target = join(ctx.scratch, 'ours-manifest');
  const key = `${c.id}.zip`;
  return {
    all: await writeFloorManifest(c.zipPath, join(ctx.scratch, `${c.id}.manifest`), oursEnv(profile, key, target)),
    oneCore: await writeFloorManifest(c.zipPath, join(ctx.scratch, `${c.id}.1core.manifest`), oursEnv(profile, key, target, ONE_CORE_ENV)),
  };
}

export async function benchCorpora(ctx: Ctx, results: Results, corpora: Corpus[], profiles: Profile[], s3Endpoint: string, o: CorpusRunOptions): Promise<void> {
  for (const c of corpora) {
    if (await ensureObject(s3Endpoint, `${c.id}.zip`, c.zipPath)) o.say(`uploaded ${c.id}.zip (${(c.zipBytes / MiB).toFixed(0)} MiB)`);
  }
  const loopback = profiles.find((p) => p.id === 'loopback')!;
  if (ctx.cores < 2) o.say('1 core: left out, this machine has no second CPU for the S3 server');
  const oneCtx: Ctx = { ...ctx, cpus: '0' };
  let n = 0;
  for (const c of corpora) {
    const byProfile = new Map<Profile['id'], CorpusResult>();
    for (const p of profiles) {
      const cr: CorpusResult = { corpus: c, profile: p.id, runs: {} };
      byProfile.set(p.id, cr);
      results.corpora.push(cr);
    }
    // Every deflated corpus, and the stored stack ("never slower than the seed" holds there too).
    // The S3 server needs a CPU of its own: on a 1-core machine these runs are left out.
    const oneCore = ctx.cores >= 2 && (c.method === 'deflate' || c.kind === 'stack');
    const one: CorpusResult = { corpus: c, profile: 'loopback', runs: {} };
    if (oneCore) (results.oneCore ??= []).push(one);
    const manifest = await manifests(ctx, c, loopback);
    const runs = o.runsFor(c);
    const key = `${c.id}.zip`;
    for (let rep = 0; rep < runs; rep++) {
      await emptyTrashIfFull(ctx, o.say);
      await o.quiet(`${c.id} run ${rep + 1}`);
      // Interleaved: every method once per repetition, so drift touches all of them alike.
      for (const p of profiles) {
        const cr = byProfile.get(p.id)!;
        const add = (r: RunResult) => {
          (cr.runs[r.method] ??= []).push(r);
          o.say(`  ${c.label} / ${p.id} / run ${rep + 1}/${runs}: ${r.method} ${fmtS(r.ms)}${describe(r)}`);
        };
        add(await runOurs(ctx, p, key, c.files, n++));
        settle();
        add(await runSeed(ctx, p, key, c.files));
        settle();
        add(await runUnzip(ctx, p, key, c.files, n++));
        settle();
        add(await runRaw(ctx, p, key, c.zipBytes));
      }
      // CPU only, the same under every profile: measured once per repetition.
      const inf = await runInflate(ctx, c.zipPath);
      settle();
      const write = await runWrite(ctx, manifest.all.path, manifest.all.files, n++);
      settle();
      for (const p of profiles) {
        (byProfile.get(p.id)!.runs.inflate ??= []).push(inf);
        (byProfile.get(p.id)!.runs.write ??= []).push(write);
      }
      o.say(`  ${c.label} / run ${rep + 1}/${runs}: inflate-only ${fmtS(inf.ms)} per core (${fmtS(Number(inf.detail?.cpuMs ?? 0))} CPU); write-only floor ${fmtS(write.ms)} CPU${describe(write)}`);
      if (!oneCore) continue;
      const restore = pinProcess(ctx.servers.s3, '1');
      try {
        const add = (r: RunResult) => {
          (one.runs[r.method] ??= []).push(r);
          o.say(`  ${c.label} / loopback, 1 core / run ${rep + 1}/${runs}: ${r.method} ${fmtS(r.ms)}${describe(r)}`);
        };
        add(await runOurs(oneCtx, loopback, key, c.files, n++, ONE_CORE_ENV));
        settle();
        add(await runSeed(oneCtx, loopback, key, c.files));
        if (c.method === 'deflate') {
          settle();
          add(await runRaw(oneCtx, loopback, key, c.zipBytes));
          add(await runWrite(oneCtx, manifest.oneCore.path, manifest.oneCore.files, n++));
          settle();
        }
      } finally {
        restore();
      }
    }
  }
}
