/**
 * `snaploader inspect`: the placement plan the init program would make for an archive, made
 * by the init program's own code (loadConfig, planPlacement, the zip directory reader), and
 * checked against the function: its memory, its /tmp (512 MB under SnapStart), Lambda's
 * 1,024 file descriptors and the SNAPLOADER_* budgets. Exits 5 naming the budget when the
 * archive does not fit, and says what to change.
 */
import { DEFAULTS, loadConfig, type Config } from '../config';
import { SnaploaderError } from '../errors';
import { PathFilter } from '../glob';
import { formatBytes } from '../log';
import { planPlacement, type Plan } from '../plan';
import { COMMON_HELP, intOption, type CommandSpec, type Parsed } from './args';
import { openArchive } from './archive-input';
import { EXIT, UsageError } from './errors';
import { table, type Output } from './output';

const MiB = 1024 * 1024;
/** Lambda's file descriptor limit for the whole sandbox. */
export const LAMBDA_FDS = 1024;
/** File descriptors left to the runtime and the handler (stdio, sockets, files it opens). */
export const FDS_FOR_RUNTIME = 128;
/** Lambda's default memory and /tmp; SnapStart fixes /tmp at 512 MB. */
const DEFAULT_MEMORY_MB = 128;
const DEFAULT_TMP_MB = 512;
const MAX_MEMORY_MB = 10240;

export const INSPECT: CommandSpec = {
  name: 'inspect',
  summary: 'show where each file of an archive would go at init, and whether it fits the function',
  positionals: [1, 1],
  options: {
    memory: { type: 'string', short: 'm' },
    'ephemeral-storage': { type: 'string' },
    snapstart: { type: 'boolean' },
    set: { type: 'string', multiple: true },
    top: { type: 'string' },
  },
  help: `Usage: snaploader inspect <libs.zip | s3://bucket/key> [--memory MB] [options]

Makes the placement plan exactly as the init program would (which files go to memory as
memfds, which to /tmp, how many file descriptors) and checks it against the function's
memory, its /tmp, Lambda's 1,024 file descriptors and the SNAPLOADER_* budgets. Reads only
the zip's central directory (from S3: a few ranged GETs, with the AWS SDK's credentials).

Options:
  -m, --memory MB              the function's memory (128-10240; default 128, Lambda's default)
  --ephemeral-storage MB       the function's /tmp size (512-10240; default 512)
  --snapstart                  the function uses SnapStart: /tmp is 512 MB, init type snap-start
  --set NAME=VALUE             a SNAPLOADER_* variable as the function sets it (repeatable),
                               e.g. --set SNAPLOADER_TMP_BUDGET=1G --set SNAPLOADER_EXCLUDE='*.a'
  --top N                      list the N largest files of each placement (default 10)

${COMMON_HELP}

Exit status: 0 fits; 5 a budget is exceeded (the report names it); 3 the archive cannot be
read; 4 the init program would refuse the archive; 2 bad command line.`,
};

export interface Check {
  budget: 'memory' | 'tmp-budget' | 'ephemeral-storage' | 'fds';
  ok: boolean;
  message: string;
  fix?: string;
}

export interface Inspection {
  archive: string;
  archiveBytes: number;
  entries: number;
  function: { memoryMB: number; ephemeralStorageMB: number; snapstart: boolean };
  budgets: { memfdMinSize: number; maxMemfds: number; memoryBudget: number | null; tmpBudget: number };
  plan: { memfdFiles: number; memfdBytes: number; tmpFiles: number; tmpBytes: number; symlinks: number; filtered: number; fds: number };
  files: { path: string; bytes: number; placement: 'memfd' | 'tmp' | 'symlink' }[];
  checks: Check[];
  fits: boolean;
  /** The smallest memory (MB) with which every check passes, when raising memory helps. */
  memoryThatFits: number | null;
}

function functionEnv(memoryMB: number, snapstart: boolean, sets: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    const name = s.slice(0, eq);
    if (eq <= 0 || !/^SNAPLOADER_[A-Z0-9_]+$/.test(name)) {
      throw new UsageError(`snaploader inspect: --set takes SNAPLOADER_NAME=VALUE, not ${JSON.stringify(s)}`);
    }
    env[name] = s.slice(eq + 1);
  }
  // The plan does not depend on where the archive is; the configuration needs one.
  delete env.SNAPLOADER_BUCKET;
  delete env.SNAPLOADER_KEY;
  env.SNAPLOADER_SOURCE = 's3://inspect-placeholder/libs.zip';
  env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE = String(memoryMB);
  env.AWS_LAMBDA_INITIALIZATION_TYPE = snapstart ? 'snap-start' : 'on-demand';
  return env;
}

/** The plan with the /tmp budget lifted, for the numbers, and the init program's own verdict on it. */
function planFor(entries: Parameters<typeof planPlacement>[0], config: Config): { plan: Plan; budgetError: SnaploaderError | null } {
  const filter = new PathFilter(config.include, config.exclude);
  const plan = planPlacement(entries, filter, { ...config, tmpBudget: Number.MAX_SAFE_INTEGER });
  try {
    planPlacement(entries, filter, config);
    return { plan, budgetError: null };
  } catch (err) {
    if (err instanceof SnaploaderError && err.code === 'BUDGET_EXCEEDED') return { plan, budgetError: err };
    throw err;
  }
}

function check(entries: Parameters<typeof planPlacement>[0], memoryMB: number, tmpMB: number, snapstart: boolean, sets: string[]) {
  const config = loadConfig(functionEnv(memoryMB, snapstart, sets));
  const { plan, budgetError } = planFor(entries, config);
  const checks: Check[] = [];
  const memory = memoryMB * MiB;
  const explicitMemoryBudget = sets.some((s) => s.startsWith('SNAPLOADER_MEMORY_BUDGET='));
  checks.push(plan.memfdBytes + DEFAULTS.memoryHeadroom <= memory || (!explicitMemoryBudget && plan.memfdBytes === 0)
    ? { budget: 'memory', ok: true, message: `${formatBytes(plan.memfdBytes)} in memfds of the function's ${memoryMB} MB (SNAPLOADER_MEMORY_BUDGET ${config.memoryBudget === null ? 'unlimited' : formatBytes(config.memoryBudget)})` }
    : { budget: 'memory', ok: false, message: `${formatBytes(plan.memfdBytes)} in memfds leaves less than ${formatBytes(DEFAULTS.memoryHeadroom)} of the function's ${memoryMB} MB to the runtime and the handler`,
      fix: 'raise the function\'s memory (--memory), or lower SNAPLOADER_MEMORY_BUDGET' });
  checks.push(budgetError === null
    ? { budget: 'tmp-budget', ok: true, message: `${formatBytes(plan.tmpBytes)} in /tmp within SNAPLOADER_TMP_BUDGET ${formatBytes(config.tmpBudget)}` }
    : { budget: 'tmp-budget', ok: false, message: budgetError.message.replace(/\. Raise .*$/s, ''), fix: budgetError.message.replace(/^.*\. (Raise .*)$/s, '$1') });
  const tmp = tmpMB * MiB;
  checks.push(plan.tmpBytes <= tmp
    ? { budget: 'ephemeral-storage', ok: true, message: `${formatBytes(plan.tmpBytes)} of the function's ${tmpMB} MB /tmp${snapstart ? ' (SnapStart: fixed at 512 MB)' : ''}` }
    : { budget: 'ephemeral-storage', ok: false, message: `${formatBytes(plan.tmpBytes)} does not fit the function's ${tmpMB} MB /tmp${snapstart ? ' (SnapStart fixes it at 512 MB)' : ''}`,
      fix: snapstart ? 'raise the function\'s memory so that more files go to memfds, or leave files out (SNAPLOADER_EXCLUDE, or pack less)' : 'raise the function\'s ephemeral storage, or its memory so that more files go to memfds' });
  const fdLimit = LAMBDA_FDS - FDS_FOR_RUNTIME;
  checks.push(plan.memfdCount <= fdLimit
    ? { budget: 'fds', ok: true, message: `${plan.memfdCount} memfds of Lambda's ${LAMBDA_FDS} file descriptors (${LAMBDA_FDS - plan.memfdCount} left to the runtime)` }
    : { budget: 'fds', ok: false, message: `${plan.memfdCount} memfds leave fewer than ${FDS_FOR_RUNTIME} of Lambda's ${LAMBDA_FDS} file descriptors to the runtime`,
      fix: `lower SNAPLOADER_MAX_MEMFDS to ${fdLimit} or less, or raise SNAPLOADER_MEMFD_MIN_SIZE` });
  return { config, plan, checks, fits: checks.every((c) => c.ok) };
}

export async function inspect(parsed: Parsed, out: Output): Promise<number> {
  const v = parsed.values;
  const snapstart = v.snapstart === true;
  const memoryMB = intOption('inspect', v, 'memory', 128, MAX_MEMORY_MB) ?? DEFAULT_MEMORY_MB;
  const storage = intOption('inspect', v, 'ephemeral-storage', 512, 10240);
  if (snapstart && storage !== undefined && storage !== DEFAULT_TMP_MB) {
    throw new UsageError('snaploader inspect: --snapstart fixes /tmp at 512 MB; drop --ephemeral-storage');
  }
  const tmpMB = storage ?? DEFAULT_TMP_MB;
  const top = intOption('inspect', v, 'top', 0, 100000) ?? 10;
  const sets = (v.set as string[] | undefined) ?? [];
  try {
    // A bad --set is a usage error, before anything is read.
    loadConfig(functionEnv(memoryMB, snapstart, sets));
  } catch (err) {
    if (err instanceof SnaploaderError && err.code === 'CONFIG_INVALID') throw new UsageError(`snaploader inspect: --set: ${err.message}`);
    throw err;
  }
  const archive = await openArchive(parsed.positionals[0], 'inspect');
  const entries = archive.directory.entries;
  const result = check(entries, memoryMB, tmpMB, snapstart, sets);
  let memoryThatFits: number | null = null;
  if (!result.fits && !sets.some((s) => s.startsWith('SNAPLOADER_MEMORY_BUDGET='))) {
    // More memory puts more files in memfds and fewer in /tmp: the first size that passes.
    let lo = memoryMB + 1;
    let hi = MAX_MEMORY_MB;
    if (check(entries, hi, tmpMB, snapstart, sets).fits) {
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        if (check(entries, mid, tmpMB, snapstart, sets).fits) hi = mid;
        else lo = mid + 1;
      }
      memoryThatFits = hi;
    }
  }
  const { config, plan, checks, fits } = result;
  const symlinks = plan.files.filter((f) => f.symlink).length;
  const inspection: Inspection = {
    archive: archive.name,
    archiveBytes: archive.size,
    entries: entries.length,
    function: { memoryMB, ephemeralStorageMB: tmpMB, snapstart },
    budgets: { memfdMinSize: config.memfdMinSize, maxMemfds: config.maxMemfds, memoryBudget: config.memoryBudget, tmpBudget: config.tmpBudget },
    plan: {
      memfdFiles: plan.memfdCount, memfdBytes: plan.memfdBytes,
      tmpFiles: plan.files.length - plan.memfdCount - symlinks, tmpBytes: plan.tmpBytes,
      symlinks, filtered: plan.filtered, fds: plan.memfdCount,
    },
    files: plan.files
      .map((f) => ({ path: f.rel.toString('utf8'), bytes: f.symlink ? 0 : f.entry.uncompressedSize, placement: f.symlink ? 'symlink' as const : f.placement }))
      .sort((a, b) => b.bytes - a.bytes || (a.path < b.path ? -1 : 1)),
    checks,
    fits,
    memoryThatFits,
  };
  out.result(inspection);
  report(inspection, top, out);
  return fits ? EXIT.OK : EXIT.BUDGET;
}

function report(r: Inspection, top: number, out: Output): void {
  const b = r.budgets;
  out.line(`${r.archive}: ${r.entries} entries, ${formatBytes(r.archiveBytes)}`);
  out.line(`function: ${r.function.memoryMB} MB memory, ${r.function.ephemeralStorageMB} MB /tmp${r.function.snapstart ? ', SnapStart' : ''}`);
  out.line(`budgets: memfds for files of ${formatBytes(b.memfdMinSize)} or more, at most ${b.maxMemfds} memfds and ` +
    `${b.memoryBudget === null ? 'unlimited' : formatBytes(b.memoryBudget)} (SNAPLOADER_MEMORY_BUDGET); /tmp ${formatBytes(b.tmpBudget)} (SNAPLOADER_TMP_BUDGET)`);
  out.line();
  const p = r.plan;
  for (const l of table([
    ['placement', 'files', 'bytes'],
    ['memory (memfds)', String(p.memfdFiles), formatBytes(p.memfdBytes)],
    ['/tmp', String(p.tmpFiles), formatBytes(p.tmpBytes)],
    ['symlinks', String(p.symlinks), '-'],
    ['filtered out', String(p.filtered), '-'],
  ])) out.line(`  ${l}`);
  for (const placement of ['memfd', 'tmp'] as const) {
    const files = r.files.filter((f) => f.placement === placement).slice(0, top);
    if (files.length === 0) continue;
    out.line();
    out.line(`largest files in ${placement === 'memfd' ? 'memory' : '/tmp'}:`);
    for (const l of table(files.map((f) => [f.path, formatBytes(f.bytes)]))) out.line(`  ${l}`);
  }
  out.line();
  for (const c of r.checks) {
    out.line(`${c.ok ? 'ok  ' : 'FAIL'} ${c.budget}: ${c.message}`);
    if (c.fix) out.line(`     to fit: ${c.fix}`);
  }
  if (r.memoryThatFits !== null) out.line(`     it fits with --memory ${r.memoryThatFits} or more`);
  out.line();
  out.line(r.fits ? 'fits: yes' : `fits: no (${r.checks.filter((c) => !c.ok).map((c) => c.budget).join(', ')})`);
}

