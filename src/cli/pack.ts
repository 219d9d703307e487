/**
 * `snaploader pack`: builds the archive the layer loads, from a directory or from a
 * requirements.txt (pip, for the function's platform), checks it with the init program's own
 * reader and planner, reports what is in it and its SHA-256, and optionally uploads it.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PathFilter } from '../glob';
import { formatBytes } from '../log';
import { planPlacement } from '../plan';
import { choiceOption, COMMON_HELP, parseS3Url, stringOption, type CommandSpec, type Parsed } from './args';
import { openArchive } from './archive-input';
import { collect } from './collect';
import { CliError, EXIT, UsageError } from './errors';
import { table, type Output } from './output';
import { readProfile, type Profile } from './profile';
import { selectByProfile } from './profile-select';
import { pipInstall, type Arch } from './pip';
import { RUNTIME_NAMES, runtimeNamed } from './runtimes';
import { upload, type Uploaded } from './upload';
import { writeZip } from './zip-writer';

export const PACK: CommandSpec = {
  name: 'pack',
  summary: 'build the archive from a directory or a requirements.txt (and upload it)',
  positionals: [1, 1],
  options: {
    output: { type: 'string', short: 'o' },
    layout: { type: 'string' },
    runtime: { type: 'string' },
    arch: { type: 'string' },
    upload: { type: 'string' },
    pip: { type: 'string' },
    top: { type: 'string' },
    profile: { type: 'string' },
    keep: { type: 'string', multiple: true },
    'order-only': { type: 'boolean' },
  },
  help: `Usage: snaploader pack <dir | requirements.txt> -o libs.zip [options]

Builds the zip the layer loads: symlinks kept as symlinks, largest files first then by
path (the same input gives the same order), bytecode of other interpreters left out
(__pycache__ files of another Python, .pyo, and every .pyc for Node.js and Java), checked
with the init program's own reader. Prints what is in it and its SHA-256 (for
SNAPLOADER_SHA256). From a requirements.txt, pip installs binary wheels for the runtime's
Python, architecture and glibc into a temporary directory first, without compiling them.

Options:
  -o, --output FILE        the zip to write (required)
  --layout root|layer      root (default): files as they sit in /var/task;
                           layer: a Lambda layer's layout: the files go under python/
                           (nodejs/node_modules/, java/lib/ for those runtimes) unless the
                           directory already starts with it
  --runtime NAME           ${RUNTIME_NAMES.join(', ')} (default python3.12)
  --arch x86_64|arm64      the function's architecture, for pip (default x86_64)
  --upload s3://bucket/key upload the zip (multipart, with a progress bar) and print the
                           environment variables to set on the function
  --pip COMMAND            how to run pip (default "python3 -m pip")
  --top N                  list the N largest files (default 10)
  --profile FILE           a profile from snaploader trace of the archive this input packs
                           to (same SHA-256): leave out the files it never used (package
                           structure, metadata and symlink targets are kept), used files first
  --keep GLOB              with --profile: keep these files too (repeatable; * ** ?)
  --order-only             with --profile: keep every file, used files first in profile order

${COMMON_HELP}

Exit status: 0 written (and uploaded); 3 the input does not exist; 4 a symlink leaves the
directory, or the result would be refused; 6 the upload failed; 7 pip failed; 2 bad
command line.`,
};

const LAYOUTS = ['root', 'layer'] as const;
const ARCHS = ['x86_64', 'arm64'] as const;

export interface PackResult {
  archive: string;
  bytes: number;
  sha256: string;
  files: number;
  symlinks: number;
  directories: number;
  uncompressedBytes: number;
  droppedBytecode: { files: number; bytes: number };
  skipped: string[];
  largest: { path: string; bytes: number }[];
  upload: Uploaded | null;
  environment: Record<string, string>;
  /** With --profile: what it left out, against the whole archive. */
  profile: { path: string; orderOnly: boolean; used: number; droppedFiles: number; droppedBytes: number; fullBytes: number; savedBytes: number } | null;
}

function inputKind(input: string): 'dir' | 'requirements' {
  let st;
  try {
    st = statSync(input);
  } catch {
    throw new CliError('INPUT_NOT_FOUND', `${input} does not exist: give a directory of libraries (e.g. a site-packages) or a requirements.txt`, EXIT.INPUT);
  }
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'requirements';
  throw new CliError('INPUT_UNREADABLE', `${input} is neither a directory nor a file`, EXIT.INPUT);
}

export async function pack(parsed: Parsed, out: Output): Promise<number> {
  const v = parsed.values;
  const output = stringOption(v, 'output');
  if (!output) throw new UsageError('snaploader pack: -o/--output is required (the zip to write)');
  const layout = choiceOption('pack', v, 'layout', LAYOUTS, 'root');
  const runtime = runtimeNamed(stringOption(v, 'runtime') ?? 'python3.12');
  const arch: Arch = choiceOption('pack', v, 'arch', ARCHS, 'x86_64');
  const destination = stringOption(v, 'upload');
  const target = destination === undefined ? null : parseS3Url('pack', destination);
  const top = Number(stringOption(v, 'top') ?? 10);
  const profilePath = stringOption(v, 'profile');
  const keep = (v.keep as string[] | undefined) ?? [];
  if (!profilePath && (keep.length || v['order-only'])) throw new UsageError('snaploader pack: --keep and --order-only go with --profile');
  const profile: Profile | null = profilePath ? readProfile(profilePath) : null;
  const input = parsed.positionals[0];
  const outPath = resolve(output);
  if (!existsSync(dirname(outPath))) throw new CliError('INPUT_NOT_FOUND', `cannot write ${output}: directory ${dirname(outPath)} does not exist`, EXIT.INPUT);

  let root = input;
  let scratch: string | null = null;
  try {
    if (inputKind(input) === 'requirements') {
      if (runtime.family !== 'python') throw new UsageError(`snaploader pack: a requirements.txt needs a Python --runtime, not ${runtime.name}`);
      scratch = mkdtempSync(join(tmpdir(), 'snaploader-pack-'));
      root = join(scratch, 'site-packages');
      out.line(`installing ${input} for ${runtime.name} on ${arch} with pip`);
      await pipInstall(stringOption(v, 'pip') ?? 'python3 -m pip', input, root, runtime, arch);
    }
    const first = runtime.layerPrefix.split('/')[0];
    const prefix = layout === 'layer' && !readdirSync(root).includes(first) ? runtime.layerPrefix : '';
    const collected = collect(root, prefix, runtime, (name, what) => out.warn(`${name} is ${what}: left out`));
    if (collected.items.length === 0) throw new CliError('INPUT_UNREADABLE', `${input} holds nothing to pack`, EXIT.INPUT);
    let items = collected.items;
    let profiled: PackResult['profile'] = null;
    if (profile) {
      // The profile must be of the archive this input packs to: the same bytes, the same SHA-256.
      const whole = `${outPath}.whole-${process.pid}`;
      const full = await writeZip(items, whole, out.progress(`writing ${output} whole, to compare with the profile`, 0));
      rmSync(whole, { force: true });
      if (full.sha256 !== profile.archive.sha256) {
        throw new CliError('PROFILE_MISMATCH', `profile ${profilePath} was recorded for an archive with SHA-256 ${profile.archive.sha256} (${profile.archive.path}), ` +
          `but ${input} packs to SHA-256 ${full.sha256}: trace this archive (snaploader trace ... --archive ${output}) or pack the input the profile was made from`, EXIT.INPUT);
      }
      const sel = selectByProfile(items, profile, keep, Boolean(v['order-only']));
      items = sel.items;
      profiled = { path: profilePath!, orderOnly: Boolean(v['order-only']), used: Object.keys(profile.files).length, droppedFiles: sel.dropped.files, droppedBytes: sel.dropped.bytes, fullBytes: full.bytes, savedBytes: 0 };
    }
    const files = items.filter((i) => i.kind === 'file');
    const uncompressed = files.reduce((s, f) => s + f.size, 0);
    const written = await writeZip(items, outPath, out.progress(`writing ${output}`, uncompressed));
    if (profiled) profiled.savedBytes = profiled.fullBytes - written.bytes;
    // The init program's own reader and planner must take it (names, conflicts, symlinks).
    const check = await openArchive(outPath, 'pack');
    planPlacement(check.directory.entries, new PathFilter([], []), { memfdMinSize: Infinity, maxMemfds: 0, tmpBudget: Infinity, memoryBudget: null });

    const uploaded = target ? await upload(outPath, target.bucket, target.key, written.sha256, out) : null;
    const environment: Record<string, string> = { AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh' };
    if (uploaded) {
      environment.SNAPLOADER_BUCKET = uploaded.bucket;
      environment.SNAPLOADER_KEY = uploaded.key;
      if (uploaded.versionId) environment.SNAPLOADER_VERSION_ID = uploaded.versionId;
    }
    environment.SNAPLOADER_SHA256 = written.sha256;
    const result: PackResult = {
      archive: output,
      bytes: written.bytes,
      sha256: written.sha256,
      files: files.length,
      symlinks: items.filter((i) => i.kind === 'symlink').length,
      directories: items.filter((i) => i.kind === 'dir').length,
      uncompressedBytes: uncompressed,
      droppedBytecode: { files: collected.droppedBytecode.length, bytes: collected.droppedBytecode.reduce((s, f) => s + f.size, 0) },
      skipped: collected.skipped,
      largest: [...files].sort((a, b) => b.size - a.size).slice(0, top).map((f) => ({ path: f.name, bytes: f.size })),
      upload: uploaded,
      environment,
      profile: profiled,
    };
    out.result(result);
    report(result, runtime.name, out);
    return EXIT.OK;
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

function report(r: PackResult, runtime: string, out: Output): void {
  out.line(`${r.archive}: ${r.files} files (${formatBytes(r.uncompressedBytes)}), ${r.symlinks} symlinks, ${r.directories} empty directories: ${formatBytes(r.bytes)}`);
  if (r.droppedBytecode.files) out.line(`left out ${r.droppedBytecode.files} bytecode files (${formatBytes(r.droppedBytecode.bytes)}) that ${runtime} would not load`);
  if (r.profile && !r.profile.orderOnly) {
    out.line(`profile ${r.profile.path}: ${r.profile.used} files used; left out ${r.profile.droppedFiles} files never used (${formatBytes(r.profile.droppedBytes)} unpacked), ` +
      `${formatBytes(r.profile.savedBytes)} less zip (${formatBytes(r.profile.fullBytes)} whole)`);
  } else if (r.profile) {
    out.line(`profile ${r.profile.path}: every file kept, the ${r.profile.used} used ones first in the order of first use`);
  }
  if (r.largest.length) {
    out.line('largest files:');
    for (const l of table(r.largest.map((f) => [f.path, formatBytes(f.bytes)]))) out.line(`  ${l}`);
  }
  out.line(`sha256 ${r.sha256}`);
  if (r.upload) out.line(`uploaded to s3://${r.upload.bucket}/${r.upload.key}${r.upload.versionId ? ` (version ${r.upload.versionId})` : ''}`);
  out.line();
  out.line(r.upload ? 'set on the function:' : 'upload it, then set on the function (with SNAPLOADER_BUCKET and SNAPLOADER_KEY):');
  for (const [k, val] of Object.entries(r.environment)) out.line(`  ${k}=${val}`);
  out.line();
  out.line(`check it fits: snaploader inspect ${r.archive} --memory <the function's MB>`);
}
