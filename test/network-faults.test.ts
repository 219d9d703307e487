/**
 * The product on a faulty network: a function in the Lambda sandbox (support/lambda.ts: the
 * emulator, awslambdaric, wrapper.sh, the helper and the init program), reading a real
 * S3-compatible server (s3rver) through a fault-injecting proxy. Every scenario must end in one of two ways, within a bounded time: the runtime starts
 * with a tree whose every file is byte-identical to the archive's source, or the init fails
 * with one line naming the cause and no tree is left behind. Never a hang, never two versions
 * of the object spliced together, never a half-written tree.
 */
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { zipDir, writeTree } from './support/archive';
import { closedPort, FaultProxy, S3_ERRORS, writeReliabilityReport, type LogEntry, type ReliabilityRow, type RequestInfo, type Rule } from './support/fault-proxy';
import { scratch } from './support/function';
import { LambdaFunction } from './support/lambda';
import { requireBuilt } from './support/paths';
import { LocalS3, REGION } from './support/s3';

const BUCKET = 'functions';
const TAIL_BYTES = 512 * 1024; // what the init program asks for first (src/zip/directory.ts)
/** A generous hang guard, not a performance target. */
const HANG_GUARD_MS = 45000;

let s3: LocalS3;
let proxy: FaultProxy;
let work: ReturnType<typeof scratch>;
let taskRoot: string;
/** The archive, and another version of it of the same size (same entries, different bytes). */
let archiveA: Buffer;
let archiveB: Buffer;
let digestsA: Record<string, string>;
let keyNo = 0;
const rows: ReliabilityRow[] = [];

function digests(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(root, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(root);
  return out;
}

beforeAll(async () => {
  requireBuilt();
  work = scratch('faults');
  s3 = await new LocalS3().start();
  await s3.createBucket(BUCKET);
  proxy = await new FaultProxy(s3.endpoint, { upstreamClient: s3.client }).start();

  // Large random files go to memfds, the rest to the tree; stored (-0), so both versions have the same size.
  const a = join(work.dir, 'a');
  const spec: Record<string, string | Buffer> = {
    'fancy/__init__.py': 'VERSION = "a"\n',
    'data/big1.bin': randomBytes(1536 * 1024),
    'data/big2.bin': randomBytes(1200 * 1024),
    'data/mid.bin': randomBytes(600 * 1024),
  };
  for (let i = 0; i < 40; i++) spec[`small/f${String(i).padStart(2, '0')}.txt`] = randomBytes(1000 + i * 500).toString('hex');
  writeTree(a, spec);
  archiveA = zipDir(a, join(work.dir, 'a.zip'), { stored: true });
  digestsA = digests(a);

  const b = join(work.dir, 'b');
  cpSync(a, b, { recursive: true });
  writeFileSync(join(b, 'fancy/__init__.py'), 'VERSION = "b"\n');
  const big1 = readFileSync(join(b, 'data/big1.bin'));
  for (let i = 0; i < big1.length; i += 4096) big1[i] ^= 0xff;
  writeFileSync(join(b, 'data/big1.bin'), big1);
  const mid = readFileSync(join(b, 'data/mid.bin'));
  mid.fill(0x42, 0, 1000);
  writeFileSync(join(b, 'data/mid.bin'), mid);
  archiveB = zipDir(b, join(work.dir, 'b.zip'), { stored: true });
  expect(archiveB.length).toBe(archiveA.length);

  // The handler reports a digest of every file in the tree, read while the runtime holds the memfds.
  taskRoot = join(work.dir, 'task');
  mkdirSync(taskRoot, { recursive: true });
  writeFileSync(join(taskRoot, 'digest_handler.py'), [
    'import hashlib, os',
    'def handler(event, context):',
    '    root = os.environ.get("SNAPLOADER_TARGET_DIR", "/tmp/snaploader")',
    '    out = {}',
    '    for d, dirs, files in os.walk(root):',
    '        if d == root: dirs[:] = [x for x in dirs if x != ".snaploader"]',
    '        for f in files:',
    '            p = os.path.join(d, f)',
    '            with open(p, "rb") as fh: out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()',
    '    import fancy',
    '    return {"files": out, "version": fancy.VERSION}',
    '',
  ].join('\n'));
}, 120000);

afterAll(async () => {
  writeReliabilityReport(__filename, rows);
  await proxy?.stop();
  await s3?.stop();
  work?.cleanup();
});

type Expectation = { ok: true } | { code: string; message: RegExp };

interface Scenario {
  name: string;
  rules?: (ctx: Ctx) => Rule[];
  expect: Expectation;
  env?: Record<string, string>;
  /** S3 answers 412 to a stale If-Match; s3rver alone does not (default: the proxy enforces it, as S3). */
  enforceIfMatch?: boolean;
  endpoint?: () => Promise<string>;
  /** What the proxy saw, checked after the outcome. */
  check?: (gets: LogEntry[], ctx: Ctx) => void;
}

interface Ctx {
  key: string;
  etagA: string;
  size: number;
  replace(): Promise<void>;
}

const RANGE = /^bytes=(\d+)-(\d+)$/;
const isRanged = (r: RequestInfo): boolean => RANGE.test(r.range ?? '');
const span = (range: string | undefined): [number, number] => {
  const m = RANGE.exec(range ?? '')!;
  return [Number(m[1]), Number(m[2])];
};

/** After a body broke at `faulted`, the next request for that range asks for exactly the rest, pinned to the ETag. */
function expectResumed(gets: LogEntry[], kind: LogEntry['action'], ctx: Ctx): void {
  const faulted = gets.find((e) => e.action === kind);
  expect(faulted).toBeDefined();
  const [start, end] = faulted!.range?.startsWith('bytes=-') ? [ctx.size - TAIL_BYTES, ctx.size - 1] : span(faulted!.range);
  const resumed = gets.find((e) => e.n > faulted!.n && isRanged(e) && span(e.range)[1] === end && span(e.range)[0] > start);
  expect(resumed).toBeDefined();
  expect(resumed!.range).toBe(`bytes=${start + faulted!.bytes}-${end}`);
  expect(resumed!.ifMatch).toBe(ctx.etagA);
  expect(resumed!.status).toBe(206);
}

/** Every successful response was of the first version: nothing of another was spliced in. */
function expectOneVersion(gets: LogEntry[], ctx: Ctx): void {
  for (const e of gets) if (e.status !== undefined && e.status < 300) expect(e.etag).toBe(ctx.etagA);
}

const scenarios: Scenario[] = [
  { name: 'no faults', expect: { ok: true }, check: (gets, ctx) => expect(gets.slice(1).every((e) => e.ifMatch === ctx.etagA)).toBe(true) },
  {
    name: 'connection reset in the middle of a ranged body',
    rules: () => [{ when: { ranged: true }, action: { kind: 'reset', afterBytes: 100000 } }],
    expect: { ok: true },
    check: (gets, ctx) => expectResumed(gets, 'reset', ctx),
  },
  {
    name: 'connection reset in the middle of the first (suffix-range) body',
    rules: () => [{ when: { suffix: true }, action: { kind: 'reset', afterBytes: 100000 } }],
    expect: { ok: true },
    check: (gets, ctx) => expectResumed(gets, 'reset', ctx),
  },
  {
    name: 'truncated body: complete headers, the connection closes early',
    rules: () => [{ when: { ranged: true }, action: { kind: 'truncate', afterBytes: 50000 } }],
    expect: { ok: true },
    check: (gets, ctx) => expectResumed(gets, 'truncate', ctx),
  },
  {
    name: 'stalled body: headers and some bytes, then silence',
    rules: () => [{ when: { ranged: true }, action: { kind: 'stall', afterBytes: 40000 } }],
    env: { SNAPLOADER_IDLE_TIMEOUT_MS: '300' },
    expect: { ok: true },
    check: (gets, ctx) => expectResumed(gets, 'stall', ctx),
  },
  {
    name: 'request accepted, response headers never sent',
    rules: () => [{ when: { ranged: true }, action: { kind: 'hang' }, times: 2 }],
    env: { SNAPLOADER_IDLE_TIMEOUT_MS: '300' },
    expect: { ok: true },
  },
  {
    name: 'connection reset before the response headers',
    rules: () => [{ when: () => true, action: { kind: 'refuse' }, times: 3 }],
    expect: { ok: true },
  },
  {
    name: 'flaky link: every response reset after 128 KiB',
    rules: () => [{ when: () => true, action: { kind: 'reset', afterBytes: 128 * 1024 }, times: Infinity }],
    expect: { ok: true },
  },
  {
    name: '503 SlowDown burst',
    rules: () => [{ when: () => true, action: S3_ERRORS.slowDown, times: 3 }],
    expect: { ok: true },
    check: (gets) => expect(gets.filter((e) => e.status === 503)).toHaveLength(3),
  },
  {
    name: '500 InternalError, twice',
    rules: () => [{ when: { ranged: true }, action: S3_ERRORS.internal, times: 2 }],
    expect: { ok: true },
  },
  {
    name: '503 SlowDown that does not stop',
    rules: () => [{ when: () => true, action: S3_ERRORS.slowDown, times: Infinity }],
    expect: { code: 'SOURCE_UNAVAILABLE', message: /^S3 answered HTTP 503 SlowDown while reading s3:\/\/functions\/\S+ \(its last 524288 bytes\), 5 attempts: S3 is throttling requests \(SlowDown\); try again later$/ },
    check: (gets) => expect(gets).toHaveLength(5),
  },
  {
    name: 'every attempt at a range stalls',
    rules: () => [{ when: { ranged: true }, action: { kind: 'stall', afterBytes: 0 }, times: Infinity }],
    env: { SNAPLOADER_IDLE_TIMEOUT_MS: '300' },
    expect: { code: 'SOURCE_STALLED', message: /^no data for 300 ms while reading s3:\/\/functions\/\S+ bytes \d+-\d+, 5 attempts: the connection stalled \(raise SNAPLOADER_IDLE_TIMEOUT_MS if the network is this slow\)$/ },
  },
  {
    name: 'a network too slow for the init time limit',
    rules: () => [{ when: { ranged: true }, action: { kind: 'hang' }, times: Infinity }],
    env: { SNAPLOADER_TIMEOUT: '2', SNAPLOADER_IDLE_TIMEOUT_MS: '30000' },
    expect: { code: 'SOURCE_TIMEOUT', message: /^reading s3:\/\/functions\/\S+ bytes \d+-\d+ did not finish before the deadline.*: the network to S3 is too slow or failing \(raise SNAPLOADER_TIMEOUT if it is just slow\)$/ },
  },
  {
    name: '403 AccessDenied on a ranged GET',
    rules: () => [{ when: { ranged: true }, action: S3_ERRORS.accessDenied }],
    expect: { code: 'SOURCE_ACCESS_DENIED', message: /^access to s3:\/\/functions\/\S+ was denied \(403 AccessDenied\): give the function's execution role s3:GetObject on arn:aws:s3:::functions\/\S+$/ },
    check: (gets) => {
      // Final: that range is never asked for again.
      const denied = gets.find((e) => e.status === 403)!;
      expect(gets.filter((e) => e.range === denied.range)).toHaveLength(1);
    },
  },
  {
    name: '404 NoSuchKey (object deleted) on a ranged GET',
    rules: () => [{ when: { ranged: true }, action: S3_ERRORS.noSuchKey }],
    expect: { code: 'SOURCE_NOT_FOUND', message: /^s3:\/\/functions\/\S+ does not exist \(404 NoSuchKey\): check SNAPLOADER_KEY and that the upload finished$/ },
    check: (gets) => expect(gets.filter((e) => e.status === 404)).toHaveLength(1),
  },
  {
    name: 'bucket in another region: 301 PermanentRedirect',
    rules: () => [{ when: () => true, action: S3_ERRORS.permanentRedirect('eu-west-1', BUCKET), times: Infinity }],
    expect: { code: 'SOURCE_WRONG_REGION', message: new RegExp(`^the bucket functions is in eu-west-1 but the function asked ${REGION} \\(301 PermanentRedirect\\): set AWS_REGION or use a bucket in the function's region$`) },
    check: (gets) => expect(gets).toHaveLength(1),
  },
  {
    name: 'bucket in another region: 400 AuthorizationHeaderMalformed',
    rules: () => [{ when: () => true, action: S3_ERRORS.wrongRegion(REGION, 'eu-west-1'), times: Infinity }],
    expect: { code: 'SOURCE_WRONG_REGION', message: new RegExp(`^the bucket functions is in eu-west-1 but the function asked ${REGION} \\(400 AuthorizationHeaderMalformed\\): set AWS_REGION or use a bucket in the function's region$`) },
    check: (gets) => expect(gets).toHaveLength(1),
  },
  {
    name: 'unreachable endpoint (connection refused)',
    endpoint: async () => `http://127.0.0.1:${await closedPort()}`,
    expect: { code: 'SOURCE_UNREACHABLE', message: /^cannot reach S3 for s3:\/\/functions\/\S+ \(ECONNREFUSED\) after 5 attempts at its last 524288 bytes: check the network \(VPC functions need an S3 endpoint or NAT\) and AWS_ENDPOINT_URL_S3 if set$/ },
  },
  {
    name: 'object replaced between two ranged GETs (S3 answers 412 to If-Match)',
    rules: (ctx) => [{ when: { ranged: true }, action: { kind: 'before', run: () => ctx.replace() } }],
    env: { SNAPLOADER_CONCURRENCY: '1' },
    expect: { code: 'SOURCE_CHANGED', message: /^s3:\/\/functions\/\S+ was replaced while it was being read \(412 PreconditionFailed\): upload new archives under a new key, or retry$/ },
    check: (gets, ctx) => {
      expect(gets.filter((e) => e.status === 412)).toHaveLength(1);
      expectOneVersion(gets, ctx);
    },
  },
  {
    name: 'object replaced between two ranged GETs (server ignores If-Match; ETag compared)',
    rules: (ctx) => [{ when: { ranged: true }, action: { kind: 'before', run: () => ctx.replace() } }],
    enforceIfMatch: false,
    env: { SNAPLOADER_CONCURRENCY: '1' },
    expect: { code: 'SOURCE_CHANGED', message: /^s3:\/\/functions\/\S+ was replaced while it was being read \(ETag "[0-9a-f]+", now "[0-9a-f]+"\): upload new archives under a new key, or retry$/ },
  },
  {
    name: 'connection reset mid-body, object replaced before the resume',
    rules: (ctx) => {
      let broken: [number, number] | null = null;
      return [
        { when: (r) => isRanged(r) && ((broken = span(r.range)), true), action: { kind: 'reset', afterBytes: 100000 } },
        { when: (r) => broken !== null && isRanged(r) && span(r.range)[1] === broken[1], action: { kind: 'before', run: () => ctx.replace() } },
      ];
    },
    env: { SNAPLOADER_CONCURRENCY: '1' },
    expect: { code: 'SOURCE_CHANGED', message: /^s3:\/\/functions\/\S+ was replaced while it was being read \(412 PreconditionFailed\)/ },
    check: (gets, ctx) => {
      const resumed = gets.find((e) => e.status === 412)!;
      expect(resumed.ifMatch).toBe(ctx.etagA);
      expectOneVersion(gets, ctx);
    },
  },
  {
    name: 'connection reset mid-body, object replaced before the resume (server ignores If-Match)',
    rules: (ctx) => {
      let broken: [number, number] | null = null;
      return [
        { when: (r) => isRanged(r) && ((broken = span(r.range)), true), action: { kind: 'reset', afterBytes: 100000 } },
        { when: (r) => broken !== null && isRanged(r) && span(r.range)[1] === broken[1], action: { kind: 'before', run: () => ctx.replace() } },
      ];
    },
    enforceIfMatch: false,
    env: { SNAPLOADER_CONCURRENCY: '1' },
    expect: { code: 'SOURCE_CHANGED', message: /\(ETag "[0-9a-f]+", now "[0-9a-f]+"\)/ },
  },
  {
    name: 'object overwritten with identical bytes mid-download (same ETag)',
    rules: (ctx) => [{ when: { ranged: true }, action: { kind: 'before', run: () => s3.put(BUCKET, ctx.key, archiveA) } }],
    // One request at a time: s3rver, unlike S3, lets a GET see an object half-written by a PUT.
    env: { SNAPLOADER_CONCURRENCY: '1' },
    expect: { ok: true },
  },
];

describe('the init program on a faulty network: a byte-identical tree or one clear line, never a hang', () => {
  test.each(scenarios.map((s) => [s.name, s] as const))('%s', async (name, sc) => {
    const key = `case-${++keyNo}.zip`;
    await s3.put(BUCKET, key, archiveA);
    const etagA = `"${createHash('md5').update(archiveA).digest('hex')}"`;
    const ctx: Ctx = { key, etagA, size: archiveA.length, replace: () => s3.put(BUCKET, key, archiveB) };
    proxy.reset(sc.rules?.(ctx) ?? [], { enforceIfMatch: sc.enforceIfMatch ?? true });
    const env = {
      AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh',
      ...s3.env(),
      AWS_ENDPOINT_URL_S3: sc.endpoint ? await sc.endpoint() : proxy.endpoint,
      SNAPLOADER_BUCKET: BUCKET,
      SNAPLOADER_KEY: key,
      SNAPLOADER_RANGE_SIZE: '512K',
      SNAPLOADER_CONCURRENCY: '4',
      ...sc.env,
    };
    const fn = await LambdaFunction.start({ handler: 'digest_handler.handler', task: taskRoot, env });
    try {
      const t0 = Date.now();
      const r = await fn.invoke();
      const ms = Date.now() - t0;
      // The init's own outcome: the emulator, like Lambda, runs a failed init again in the invoke.
      const lines = fn.snaploaderLog();
      const first = lines.slice(0, 1);
      let observed: string;
      if (r.status === 200 && !/errorType/.test(r.body)) {
        const files = (JSON.parse(r.body).files ?? {}) as Record<string, string>;
        const same = JSON.stringify(Object.entries(files).sort()) === JSON.stringify(Object.entries(digestsA).sort());
        observed = `${same ? 'byte-identical tree' : 'TREE DIFFERS'} (${Object.keys(files).length} files) after ${proxy.gets().length} GETs`;
      } else {
        observed = first.join(' | ') || `invoke ${r.status} ${r.body}`;
      }
      rows.push({
        case: name,
        expected: 'ok' in sc.expect ? 'byte-identical tree' : sc.expect.code,
        observed,
        test: `network-faults.test.ts › ${name}`,
        ms,
      });

      expect(ms).toBeLessThan(HANG_GUARD_MS);
      if ('ok' in sc.expect) {
        if (r.status !== 200) throw new Error(`init failed: ${fn.log}`);
        const out = JSON.parse(r.body);
        expect(out.files).toEqual(digestsA);
        expect(out.version).toBe('a');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(new RegExp(`^snaploader: loaded ${Object.keys(digestsA).length} files `));
      } else {
        const prefix = `snaploader: ${sc.expect.code}: `;
        expect(first).toHaveLength(1);
        expect(first[0].startsWith(prefix) ? first[0] : `(wrong code) ${first[0]}`).toMatch(new RegExp(`^${prefix}`));
        expect(first[0].slice(prefix.length)).toMatch(sc.expect.message);
        if (r.status !== 200) {
          // No tree, complete or partial, is left behind.
          expect(existsSync(fn.tmpPath('/tmp/snaploader'))).toBe(false);
          expect(readdirSync(fn.tmpPath('/tmp')).filter((n) => n.includes('.partial-'))).toEqual([]);
        }
      }
    } finally {
      await fn.stop();
    }
    sc.check?.(proxy.gets(), ctx);
  });
});
