/**
 * The init program: run by snaploader-helper before the runtime starts. It loads the archive
 * into memfds and the tree, tells the helper what the runtime needs, and exits.
 * Steps: config -> central directory -> plan -> stream entries (directories and memfds made
 * meanwhile) -> layout -> DONE.
 */
import { open } from 'node:fs';
import { homedir } from 'node:os';
import { promisify } from 'node:util';
import { describeCodeCache } from './code-cache';
import { describeSettings, loadConfig } from './config';
import { HelperClient } from './control';
import { describe, SnaploaderError } from './errors';
import { extractGroups } from './extract/extractor';
import { groupRanges } from './extract/ranges';
import { PathFilter } from './glob';
import { keepYoungGenerationSmall } from './heap';
import { coverWholeObject, OrderedHasher } from './integrity';
import { computeLayout } from './layout';
import { debug, error, formatBytes, info, record, setDebug, warn } from './log';
import { encodeMappingFile } from './mapping-file';
import { emfRecord } from './metrics';
import { checkNative } from './native';
import { planPlacement, type Plan, type PlannedFile } from './plan';
import { openS3Source } from './s3/source';
import { slabCounts } from './slabs';
import { sizeThreadpool } from './threadpool';
import { Tree } from './tree';
import { readCentralDirectory, TAIL_BYTES } from './zip/directory';

/** Bytes of unwanted data we would rather read through than pay a new request for. */
const MAX_GAP = 256 * 1024;
/** The init program gives up this long before the helper's hard timeout, to say why itself. */
const DEADLINE_MARGIN_MS = 1000;
/** Archive bytes held in memory at once, across all ranges in flight. */
const BUFFER_BUDGET = 16 * 1024 * 1024;
const openAsync = promisify(open);
/** The oldest Node.js the bundle is built for (build.mjs: target node20). */
const MIN_NODE_MAJOR = 20;

/**
 * The tree's directories (in the threadpool) and the memfds (asked of the helper all at once:
 * one round trip, not one per file, while the main thread is busy with the first responses),
 * then the memfds' links in the tree.
 */
async function makeDestinations(tree: Tree, plan: Plan, client: HelperClient, memfds: Map<PlannedFile, number>): Promise<void> {
  const inMemory = plan.files.filter((f) => f.placement === 'memfd');
  const made = await Promise.allSettled([
    tree.mkdirs(plan.dirs),
    ...inMemory.map(async (f) => memfds.set(f, await client.memfd(f.entry.uncompressedSize, basename(f.rel)))),
  ]);
  for (const r of made) if (r.status === 'rejected') throw r.reason;
  for (const [f, fd] of memfds) tree.linkMemfd(f, fd);
  debug(`${plan.dirs.length} directories and ${memfds.size} memfds ready`);
}

function basename(rel: Buffer): string {
  const s = rel.toString('utf8');
  return s.slice(s.lastIndexOf('/') + 1);
}

async function run(client: HelperClient, started: number): Promise<void> {
  const config = loadConfig(process.env);
  setDebug(config.debug);
  for (const warning of config.warnings) warn(warning);
  debug(describeSettings(config));
  const codeCache = describeCodeCache();
  if (codeCache) debug(codeCache);
  const { source, tail } = await openS3Source({
    bucket: config.bucket,
    key: config.key,
    forcePathStyle: config.forcePathStyle,
    maxSockets: config.concurrency + 2,
    idleTimeoutMs: config.idleTimeoutMs,
    versionId: config.versionId ?? undefined,
    deadline: started + Math.max(500, config.timeoutSeconds * 1000 - DEADLINE_MARGIN_MS),
    maxAttempts: config.maxAttempts,
  }, TAIL_BYTES);
  const directory = await readCentralDirectory(source.size, tail, source.read);
  debug(`${directory.entries.length} entries in the central directory`);
  const plan = planPlacement(directory.entries, new PathFilter(config.include, config.exclude), config);
  debug(`plan: ${plan.memfdCount} files (${formatBytes(plan.memfdBytes)}) to memory, ${plan.files.length - plan.memfdCount} to ${config.targetDir} (${formatBytes(plan.tmpBytes)}), ${plan.filtered} filtered out`);
  const ranged = groupRanges(plan.files, directory.entries, directory.directoryOffset, config.rangeSize, config.sha256 ? Infinity : MAX_GAP);
  const hasher = config.sha256 ? new OrderedHasher(source.size) : null;
  const groups = hasher ? coverWholeObject(ranged, source.size, config.rangeSize) : ranged;
  debug(`${groups.length} ranged GETs, ${config.concurrency} at a time`);

  const tree = new Tree(config.targetDir, client.helperPid);
  tree.prepare();
  try {
    // The ranged GETs start at once; the directories and memfds are made while the first
    // responses are on their way, and no entry is written before they exist (`ready`).
    const memfds = new Map<PlannedFile, number>();
    const ready = makeDestinations(tree, plan, client, memfds);
    const extraction = extractGroups(source, groups, {
      concurrency: config.concurrency, rangeSize: config.rangeSize, bufferBudget: BUFFER_BUDGET,
      observe: hasher ? (offset, buf) => hasher.push(offset, buf) : undefined,
    }, {
      ready,
      open: (f) => (f.placement === 'memfd' ? openAsync(client.fdPath(memfds.get(f)!), 'r+') : tree.openFile(f)),
      createPath: (f) => (f.placement === 'memfd' ? null : tree.createPath(f)),
      createFailed: (f, err) => tree.createFailed(f, err),
      symlink: (f, target) => tree.symlink(f, target),
    });
    // Both settle before anything is cleaned up; a failure to make a destination is the cause
    // of the extraction's failure, so it is the one reported.
    const [made, extracted] = await Promise.allSettled([ready, extraction]);
    if (made.status === 'rejected') throw made.reason;
    if (extracted.status === 'rejected') throw extracted.reason;
    const bytes = extracted.value;
    debug(`every entry written (${formatBytes(bytes)}); read into ${slabCounts.allocated} slabs allocated, ${slabCounts.reused} reused; ` +
      `handed on as ${slabCounts.views} views of ${formatBytes(Math.round(slabCounts.viewBytes / Math.max(1, slabCounts.views)))} on average`);
    if (hasher) hasher.verify(config.sha256!, source.url);
    const layout = computeLayout(plan, config.basePath, tree, memfds, process.env);
    const mapPath = tree.writeMeta('map', encodeMappingFile(layout.records));
    tree.commit();
    debug(`layout ${layout.kind}: sys.path += ${layout.pythonPaths.join(':')}; library dirs ${layout.libraryDirs.join(':') || '(none)'}`);
    for (const [name, value] of [...layout.env, ['SNAPLOADER_MAP', mapPath] as [string, string]]) await client.setenv(name, value);
    const durationMs = Date.now() - started;
    const summary = {
      files: plan.files.length, bytes, memfdBytes: plan.memfdBytes, tmpBytes: bytes - plan.memfdBytes, durationMs,
      gets: source.counts.gets, retries: source.counts.retries,
    };
    info(`loaded ${plan.files.length} files (${formatBytes(bytes)}) from ${source.url} in ${(durationMs / 1000).toFixed(2)} s: ` +
      `${plan.memfdCount} in memory (${formatBytes(plan.memfdBytes)}), ${plan.files.length - plan.memfdCount} in ${config.targetDir} ` +
      `(${formatBytes(bytes - plan.memfdBytes)})${plan.filtered ? `, ${plan.filtered} filtered out` : ''}`, summary);
    if (config.metrics === 'emf') record(emfRecord(summary, process.env.AWS_LAMBDA_FUNCTION_NAME || 'unknown'));
  } catch (err) {
    tree.abort();
    throw err;
  }
}

/**
 * The SDK looks for ~/.aws/config while it resolves its settings, and asks Node for the home
 * directory when HOME is unset, which throws (ENOENT) for a user /etc/passwd does not name (a
 * container image run under an arbitrary uid). Lambda sets no HOME. Give this process, never
 * the runtime, a HOME that holds no configuration, so the SDK reads only the environment.
 */
function giveTheSdkAHome(env: NodeJS.ProcessEnv): void {
  if (env.HOME) return;
  try {
    homedir();
  } catch {
    env.HOME = '/nonexistent';
  }
}

async function main(): Promise<number> {
  const started = Date.now();
  // The SDK warns about this process's Node version; it is ours, not the function's, and the
  // warning would read as the function's own problem. (Only this process's env is touched.)
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  giveTheSdkAHome(process.env);
  let client: HelperClient | null = null;
  try {
    if (Number(process.versions.node.split('.')[0]) < MIN_NODE_MAJOR) {
      throw new SnaploaderError('NODE_TOO_OLD', `Node.js ${process.version} is too old for the init program (it needs ${MIN_NODE_MAJOR} or later): ` +
        'attach the snaploader Node layer, or point SNAPLOADER_NODE at a newer node');
    }
    checkNative();
    client = HelperClient.fromEnv(process.env);
    await run(client, started);
    await client.done();
    return 0;
  } catch (err) {
    const line = describe(err);
    if (process.env.SNAPLOADER_DEBUG && (err as Error)?.stack) debug((err as Error).stack!);
    if (client) {
      await client.error(line).catch(() => error(line));
    } else {
      error(line);
    }
    return 1;
  } finally {
    client?.close();
  }
}

sizeThreadpool(process.env); // before anything touches libuv's threadpool
keepYoungGenerationSmall();
main().then((code) => process.exit(code));
