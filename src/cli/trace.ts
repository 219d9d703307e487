/**
 * `snaploader trace`: runs the function like `snaploader run` (the layer, the embedded S3
 * server, the emulator, the sandbox) with SNAPLOADER_TRACE on, so that the preload library
 * records each file of the tree a process first opens or loads; init plus every event. Before
 * the function stops, the runtime's /proc/<pid>/maps adds what ld.so mapped without any hook
 * seeing it. Writes the profile (src/cli/profile.ts) that `pack --profile` reads.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { formatBytes } from '../log';
import { COMMON_HELP, stringOption, type CommandSpec, type Parsed } from './args';
import { openArchive } from './archive-input';
import { CliError, EXIT, UsageError } from './errors';
import type { Output } from './output';
import { decodeTraceLine, PROFILE_VERSION, sha256File, tally, type Profile } from './profile';
import { EXIT_FUNCTION_FAILED, functionInputs, LocalFunction, outcome, readEvent } from './local-function';

export const TRACE: CommandSpec = {
  name: 'trace',
  summary: 'run the function locally and record which archive files it uses (a profile for pack --profile)',
  positionals: [1, 1],
  options: {
    archive: { type: 'string', short: 'a' },
    event: { type: 'string', short: 'e', multiple: true },
    output: { type: 'string', short: 'o' },
    task: { type: 'string' },
    memory: { type: 'string', short: 'm' },
    set: { type: 'string', multiple: true },
  },
  help: `Usage: snaploader trace <module.handler> --archive libs.zip --event event.json [--event more.json ...] -o profile.json [options]

Runs the function as snaploader run does (the layer, an embedded S3 server, the emulator and
the Lambda-like sandbox): the init, then one invoke per event, in order. The preload library
records each file of the archive that a process of the function opens or loads, and the
runtime's memory map adds the libraries the loader mapped by itself. Writes a profile: each
archive path used, its first-use order and count, the archive's SHA-256 and the events, for
snaploader pack --profile.

Options:
  -a, --archive FILE      the zip to load (required)
  -e, --event FILE        an event, a JSON file (repeatable; default one {} event)
  -o, --output FILE       the profile to write (required)
  --task DIR              the function's code, mounted at /var/task (default: the current directory)
  -m, --memory MB         the function's memory (default 1024)
  --set NAME=VALUE        another variable of the function (repeatable)

${COMMON_HELP}

Exit status: 0 the profile is written; 8 the init or a handler failed (no profile); 3 an
input is missing; 2 bad command line.`,
};

const TREE = '/tmp/snaploader';
const TRACE_FILE = '/tmp/snaploader-trace.log';

/** Every process under `pid` (itself included). */
function descendants(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    try {
      for (const tid of readdirSync(`/proc/${all[i]}/task`)) {
        const kids = readFileSync(`/proc/${all[i]}/task/${tid}/children`, 'utf8').trim();
        if (kids) all.push(...kids.split(' ').map(Number));
      }
    } catch {
      /* exited meanwhile */
    }
  }
  return all;
}

/** Inode of each memfd behind a tree link (tree path -> /proc/P/fd/N) -> the link's archive path. */
function memfdInodes(hostTree: string): Map<number, string> {
  const inodes = new Map<number, string>();
  const walk = (dir: string, rel: string) => {
    for (const ent of readdirSync(dir)) {
      const path = join(dir, ent);
      const name = rel ? `${rel}/${ent}` : ent;
      const st = lstatSync(path);
      if (st.isDirectory() && name !== '.snaploader') walk(path, name);
      else if (st.isSymbolicLink() && /^\/proc\/\d+\/fd\/\d+$/.test(readlinkSync(path))) {
        try {
          inodes.set(statSync(readlinkSync(path)).ino, name);
        } catch {
          /* the process is gone */
        }
      }
    }
  };
  if (existsSync(hostTree)) walk(hostTree, '');
  return inodes;
}

/** Archive paths of the files mapped into the function's processes now. */
function mappedFiles(pids: number[], inodes: Map<number, string>): string[] {
  const found: string[] = [];
  for (const pid of pids) {
    let maps: string;
    try {
      maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
    } catch {
      continue;
    }
    const seen = new Set<string>();
    for (const line of maps.split('\n')) {
      const f = line.split(/\s+/);
      if (f.length < 6) continue;
      const path = f.slice(5).join(' ');
      let name: string | undefined;
      if (path.startsWith(`${TREE}/`)) name = path.slice(TREE.length + 1);
      else if (path.startsWith('/memfd:')) name = inodes.get(Number(f[4]));
      if (name !== undefined && !seen.has(name)) {
        seen.add(name);
        found.push(name);
      }
    }
  }
  return found;
}

export async function trace(parsed: Parsed, out: Output): Promise<number> {
  const v = parsed.values;
  const inputs = functionInputs('trace', parsed);
  const { handler, archive } = inputs;
  const output = stringOption(v, 'output');
  if (!output) throw new UsageError('snaploader trace: -o/--output is required (the profile to write)');
  const eventFiles = (v.event as string[] | undefined) ?? [];
  const events = eventFiles.length ? eventFiles.map((e) => readEvent('trace', e)) : [{}];
  if (inputs.extra.SNAPLOADER_TARGET_DIR !== undefined) throw new UsageError('snaploader trace: SNAPLOADER_TARGET_DIR cannot be changed while tracing');
  const opened = await openArchive(archive, 'trace');
  const entries = new Map<string, number>();
  for (const e of opened.directory.entries) if (!e.isDirectory) entries.set(e.name.toString('utf8'), e.uncompressedSize);
  const sha256 = await sha256File(archive);

  const local = await LocalFunction.start(inputs, { SNAPLOADER_TRACE: TRACE_FILE });
  try {
    const { fn } = local;
    for (let i = 0; i < events.length; i++) {
      const res = await fn.invoke(events[i]);
      const { response, failed } = outcome(res);
      if (failed) {
        for (const l of fn.functionLog()) out.warn(l);
        throw new CliError('FUNCTION_FAILED', `the function failed on ${eventFiles[i] ?? 'the {} event'} (${res.status}): ${typeof response === 'string' ? response : JSON.stringify(response)}; ` +
          'a profile is only written when every invocation succeeds', EXIT_FUNCTION_FAILED);
      }
    }
    // What ld.so mapped by itself (DT_NEEDED dependencies), from the processes still running.
    const pid = fn.bootstrapPid();
    const pids = pid === undefined ? [] : descendants(pid);
    const mapped = mappedFiles(pids, memfdInodes(fn.tmpPath(TREE)));
    const traceFile = fn.tmpPath(TRACE_FILE);
    const lines = existsSync(traceFile) ? readFileSync(traceFile, 'utf8').split('\n').filter((l) => l !== '') : [];
    const recorded = lines.map(decodeTraceLine);
    const uses = [...recorded, ...mapped].filter((name) => entries.has(name));
    const files = tally(uses);
    const seenByHooks = new Set(recorded);
    const usedBytes = Object.keys(files).reduce((s, n) => s + (entries.get(n) ?? 0), 0);
    const profile: Profile = {
      version: PROFILE_VERSION,
      archive: { path: archive, sha256, bytes: opened.size, files: entries.size },
      handler,
      events: eventFiles,
      used: { files: Object.keys(files).length, bytes: usedBytes },
      files,
    };
    writeFileSync(output, `${JSON.stringify(profile, null, 2)}\n`);
    const totalBytes = [...entries.values()].reduce((s, b) => s + b, 0);
    out.result({ profile: output, archive, sha256, events: eventFiles, used: profile.used, archiveFiles: entries.size, archiveBytes: totalBytes, mappedOnly: mapped.filter((m) => entries.has(m) && !seenByHooks.has(m)).length });
    out.line(`${output}: ${profile.used.files} of ${entries.size} files used (${formatBytes(usedBytes)} of ${formatBytes(totalBytes)}), ` +
      `init and ${events.length} event${events.length === 1 ? '' : 's'}`);
    out.line(`sha256 ${sha256}`);
    out.line(`next: snaploader pack <the same directory> -o smaller.zip --profile ${output}`);
    return EXIT.OK;
  } finally {
    await local.stop();
  }
}
