/**
 * Reads the init program's configuration from the environment. Every rejection names the
 * variable and says what a good value looks like. The table in README.md is the contract.
 */
import { posix } from 'node:path';
import { ConfigError } from './errors';
import { s3EndpointFromEnv } from './s3/endpoint';
import { parseBool, parseChoice, parseDiagnosticSwitch, parseWholeNumber, settingValue, settingWord } from './settings';

export interface Config {
  bucket: string;
  key: string;
  basePath: string;
  targetDir: string;
  include: string[];
  exclude: string[];
  debug: boolean;
  onError: OnError;
  /** Files at least this large go to memfds (while the fd and memory budgets allow). */
  memfdMinSize: number;
  maxMemfds: number;
  tmpBudget: number;
  /** Bytes of memfds allowed; null when the function's memory size is unknown and not set. */
  memoryBudget: number | null;
  concurrency: number;
  rangeSize: number;
  idleTimeoutMs: number;
  forcePathStyle: boolean;
  /** Lower-case hex SHA-256 the whole object must have, or null. */
  sha256: string | null;
  /** The S3 object version to read, or null for the current one. */
  versionId: string | null;
  /** Seconds the whole init may take (the helper kills the init program then). */
  timeoutSeconds: number;
  /** Attempts per read that may fail in a row before the read fails. */
  maxAttempts: number;
  /** Settings that were read with a warning (e.g. an unrecognised SNAPLOADER_DEBUG), to print once debug output is set up. */
  warnings: string[];
  /** SNAPLOADER_METRICS: `emf` also writes the init summary as a CloudWatch embedded-metric-format record. */
  metrics: 'off' | 'emf';
}

export const ON_ERROR_WORDS = ['fail', 'continue'] as const;
export type OnError = (typeof ON_ERROR_WORDS)[number];

type Env = Record<string, string | undefined>;

const MiB = 1024 * 1024;
export const DEFAULTS = {
  basePath: '/var/task',
  targetDir: '/tmp/snaploader',
  memfdMinSize: 1 * MiB,
  maxMemfds: 512,
  tmpBudget: 384 * MiB,
  /** Left to the runtime and the init program when the budget derives from the function's memory. */
  memoryHeadroom: 256 * MiB,
  concurrency: 8,
  /** On-demand init has 10 s in all; SnapStart and provisioned concurrency have up to 15 min. */
  timeoutOnDemand: 9,
  timeoutPrepared: 600,
  maxAttempts: 5,
  rangeSize: 8 * MiB,
  idleTimeoutMs: 5000,
};

const get = settingValue;

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: MiB, g: 1024 * MiB };

/** Bytes: a whole number with an optional K, M or G suffix (powers of 1024; KiB/MiB/GiB also accepted). */
export function parseSize(env: Env, name: string, fallback: number): number {
  const v = get(env, name);
  if (v === undefined) return fallback;
  const m = /^(\d+)\s*([kmg]?)(?:i?b)?$/i.exec(v);
  if (!m) throw new ConfigError(`${name}=${JSON.stringify(v)} is not a size: use bytes or a number with K, M or G (e.g. 512M)`);
  const n = Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()];
  if (!Number.isSafeInteger(n)) throw new ConfigError(`${name}=${JSON.stringify(v)} is too large`);
  return n;
}

function parseAbsoluteDir(env: Env, name: string, fallback: string): string {
  const v = get(env, name) ?? fallback;
  if (!v.startsWith('/') || v.includes('\0')) throw new ConfigError(`${name}=${JSON.stringify(v)} must be an absolute path`);
  const norm = posix.normalize(v).replace(/\/+$/, '');
  if (norm === '') throw new ConfigError(`${name}=${JSON.stringify(v)} cannot be the root directory`);
  return norm;
}

function parseGlobs(env: Env, name: string): string[] {
  const v = get(env, name);
  if (v === undefined) return [];
  const globs = v.split(',').map((g) => g.trim()).filter((g) => g !== '');
  for (const g of globs) {
    if (g.startsWith('/')) throw new ConfigError(`${name}: pattern ${JSON.stringify(g)} must be relative to the archive root (no leading /)`);
  }
  return globs;
}

// S3 bucket naming rules (general purpose and directory buckets).
const BUCKET_RE = /^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](--x-s3)?$/;

function parseSource(env: Env): { bucket: string; key: string } {
  const source = get(env, 'SNAPLOADER_SOURCE');
  const bucketVar = get(env, 'SNAPLOADER_BUCKET');
  const keyVar = get(env, 'SNAPLOADER_KEY');
  let bucket: string;
  let key: string;
  if (source !== undefined) {
    if (bucketVar !== undefined || keyVar !== undefined) {
      throw new ConfigError('set either SNAPLOADER_SOURCE or SNAPLOADER_BUCKET and SNAPLOADER_KEY, not both');
    }
    const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(source);
    if (!m) throw new ConfigError(`SNAPLOADER_SOURCE=${JSON.stringify(source)} must look like s3://bucket/path/to/archive.zip`);
    [, bucket, key] = m;
  } else {
    if (bucketVar === undefined && keyVar === undefined) {
      throw new ConfigError('no archive configured: set SNAPLOADER_BUCKET and SNAPLOADER_KEY (or SNAPLOADER_SOURCE=s3://bucket/key)');
    }
    if (bucketVar === undefined) throw new ConfigError('SNAPLOADER_KEY is set but SNAPLOADER_BUCKET is not: set both');
    if (keyVar === undefined) throw new ConfigError('SNAPLOADER_BUCKET is set but SNAPLOADER_KEY is not: set both');
    bucket = bucketVar;
    key = keyVar.replace(/^\/+/, '');
  }
  if (!BUCKET_RE.test(bucket)) {
    throw new ConfigError(`bucket name ${JSON.stringify(bucket)} is not a valid S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')`);
  }
  if (key === '') throw new ConfigError('the archive key is empty: set SNAPLOADER_KEY to the zip object key');
  return { bucket, key };
}

/** The same default the helper applies (bootstrap/snaploader-helper.c). */
function defaultTimeout(env: Env): number {
  const type = settingWord(env, 'AWS_LAMBDA_INITIALIZATION_TYPE');
  return type === undefined || type === 'on-demand' ? DEFAULTS.timeoutOnDemand : DEFAULTS.timeoutPrepared;
}

function parseSha256(env: Env): string | null {
  const v = get(env, 'SNAPLOADER_SHA256');
  if (v === undefined) return null;
  if (!/^[0-9a-fA-F]{64}$/.test(v)) {
    throw new ConfigError(`SNAPLOADER_SHA256 must be the 64 hex digits of the archive's SHA-256 (sha256sum archive.zip), not ${JSON.stringify(v)}`);
  }
  return v.toLowerCase();
}

export function loadConfig(env: Env): Config {
  const { bucket, key } = parseSource(env);
  const onError = parseChoice(env, 'SNAPLOADER_ON_ERROR', ON_ERROR_WORDS, 'fail');
  const debug = parseDiagnosticSwitch(env, 'SNAPLOADER_DEBUG');
  const basePath = parseAbsoluteDir(env, 'SNAPLOADER_BASE_PATH', DEFAULTS.basePath);
  const targetDir = parseAbsoluteDir(env, 'SNAPLOADER_TARGET_DIR', DEFAULTS.targetDir);
  if (targetDir === '/tmp' || basePath === targetDir || (basePath + '/').startsWith(targetDir + '/')) {
    throw new ConfigError(`SNAPLOADER_TARGET_DIR=${targetDir} must be a directory of its own, not /tmp itself or a parent of SNAPLOADER_BASE_PATH`);
  }
  let memoryBudget: number | null = parseSize(env, 'SNAPLOADER_MEMORY_BUDGET', -1);
  if (memoryBudget < 0) {
    const fnMemory = get(env, 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE');
    memoryBudget = fnMemory !== undefined && /^\d+$/.test(fnMemory)
      ? Math.max(0, Number(fnMemory) * MiB - DEFAULTS.memoryHeadroom)
      : null;
  }
  const endpoint = s3EndpointFromEnv(env);
  return {
    bucket,
    key,
    basePath,
    targetDir,
    include: parseGlobs(env, 'SNAPLOADER_INCLUDE'),
    exclude: parseGlobs(env, 'SNAPLOADER_EXCLUDE'),
    debug: debug.on,
    onError,
    memfdMinSize: parseSize(env, 'SNAPLOADER_MEMFD_MIN_SIZE', DEFAULTS.memfdMinSize),
    maxMemfds: parseWholeNumber(env, 'SNAPLOADER_MAX_MEMFDS', DEFAULTS.maxMemfds, 0, 4096),
    tmpBudget: parseSize(env, 'SNAPLOADER_TMP_BUDGET', DEFAULTS.tmpBudget),
    memoryBudget,
    // Fixed, not derived from the function's vCPUs: 24 ranges in flight at 10 GB raised the init
    // program's peak RSS from 284 to 523 MB in the benchmark (BENCHMARKS.md).
    concurrency: parseWholeNumber(env, 'SNAPLOADER_CONCURRENCY', DEFAULTS.concurrency, 1, 64),
    rangeSize: parseSize(env, 'SNAPLOADER_RANGE_SIZE', DEFAULTS.rangeSize),
    idleTimeoutMs: parseWholeNumber(env, 'SNAPLOADER_IDLE_TIMEOUT_MS', DEFAULTS.idleTimeoutMs, 100, 600000),
    // A custom endpoint (a local server, MinIO) usually has no per-bucket DNS names.
    forcePathStyle: parseBool(env, 'SNAPLOADER_S3_PATH_STYLE', endpoint !== undefined),
    sha256: parseSha256(env),
    versionId: get(env, 'SNAPLOADER_VERSION_ID') ?? null,
    timeoutSeconds: parseWholeNumber(env, 'SNAPLOADER_TIMEOUT', defaultTimeout(env), 1, 3600),
    maxAttempts: parseWholeNumber(env, 'SNAPLOADER_MAX_ATTEMPTS', DEFAULTS.maxAttempts, 1, 20),
    warnings: debug.warning === null ? [] : [debug.warning],
    metrics: parseChoice(env, 'SNAPLOADER_METRICS', ['off', 'emf'] as const, 'off'),
  };
}

/** The debug line that says how the settings every component reads were understood. */
export function describeSettings(config: Config): string {
  return `settings: on error ${config.onError}; timeout ${config.timeoutSeconds} s; debug on`;
}
