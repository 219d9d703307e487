/**
 * Logs and metrics as a Lambda user sees them, end to end in the Lambda sandbox: with
 * AWS_LAMBDA_LOG_FORMAT=JSON every line snaploader writes (wrapper, helper, init program,
 * preload library) is one JSON object with Lambda's fields; AWS_LAMBDA_LOG_LEVEL drops lines
 * below it; SNAPLOADER_METRICS=emf adds one embedded-metric-format record of the init.
 */
import { execFileSync } from 'node:child_process';
import { TASK_ROOT } from './support/function';
import { json, withFunction, type FunctionConfig, type LambdaFunction } from './support/lambda';
import { NativeArchiveBucket } from './support/native';
import { requireBuilt } from './support/paths';

const BUCKET = 'logs';
const TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
let archive: NativeArchiveBucket;

beforeAll(async () => {
  requireBuilt();
  archive = await NativeArchiveBucket.start(BUCKET, 'e2e-logs');
  await archive.s3.put(BUCKET, 'not-a-zip.zip', Buffer.from('this is a text file, not an archive\n'));
}, 600000);

afterAll(async () => {
  await archive?.stop();
});

function config(key: string, env: Record<string, string>): FunctionConfig {
  return { handler: 'handler.handler', task: TASK_ROOT, env: archive.env(key, env) };
}

type Line = Record<string, any>;

/** snaploader's lines: every line that names us must be one of our JSON objects (or an EMF record). */
function ourLines(fn: LambdaFunction): Line[] {
  const ours = fn.functionLog().filter((l) => /snaploader/.test(l));
  const parsed = ours.map((l) => {
    try {
      return JSON.parse(l) as Line;
    } catch {
      throw new Error(`a snaploader line that is not JSON: ${l}`);
    }
  });
  return parsed.filter((o) => o.logger === 'snaploader' || o._aws);
}

function expectLambdaFields(lines: Line[]): void {
  for (const l of lines.filter((o) => !o._aws)) {
    expect(l).toEqual(expect.objectContaining({
      timestamp: expect.stringMatching(TS), level: expect.stringMatching(/^(DEBUG|INFO|WARN|ERROR)$/),
      message: expect.any(String), logger: 'snaploader', component: expect.stringMatching(/^(wrapper|helper|init|preload)$/),
    }));
  }
}

/** Files and bytes of the archive, read with Python's zipfile (not our reader). */
function archiveTotals(): { files: number; bytes: number } {
  const out = execFileSync('python3', ['-c', 'import sys,zipfile\nz=[i for i in zipfile.ZipFile(sys.argv[1]).infolist() if not i.is_dir()]\nprint(len(z), sum(i.file_size for i in z))', archive.zipPath]).toString().trim().split(' ');
  return { files: Number(out[0]), bytes: Number(out[1]) };
}

describe('AWS_LAMBDA_LOG_FORMAT=JSON', () => {
  test('a successful init with debug on: every line of ours is JSON, from every component, and one EMF record with the numbers', async () => {
    await withFunction(config('native.zip', { AWS_LAMBDA_LOG_FORMAT: 'JSON', AWS_LAMBDA_LOG_LEVEL: 'DEBUG', SNAPLOADER_DEBUG: '1', SNAPLOADER_METRICS: 'EMF' }), async (fn) => {
      const r = await fn.invoke({});
      expect(r.status).toBe(200);
      expect(json(r).answer).toBe(42);
      const lines = ourLines(fn);
      expectLambdaFields(lines);
      expect(new Set(lines.map((l) => l.component).filter(Boolean))).toEqual(new Set(['wrapper', 'helper', 'init', 'preload']));
      const summary = lines.filter((l) => l.level === 'INFO');
      expect(summary).toHaveLength(1);
      expect(summary[0].message).toMatch(/^loaded 5 files /);
      const emf = lines.filter((l) => l._aws);
      expect(emf).toHaveLength(1);
      const rec = emf[0];
      const decl = rec._aws.CloudWatchMetrics[0];
      expect(decl).toEqual(expect.objectContaining({ Namespace: 'snaploader', Dimensions: [['FunctionName']] }));
      expect(typeof rec._aws.Timestamp).toBe('number');
      expect(rec.FunctionName).toBe('snaploader-test');
      for (const m of decl.Metrics) expect(typeof rec[m.Name]).toBe('number');
      const totals = archiveTotals();
      expect(rec).toEqual(expect.objectContaining({ Files: totals.files, Bytes: totals.bytes, Retries: 0 }));
      expect(rec.MemoryBytes + rec.TmpBytes).toBe(rec.Bytes);
      expect(rec.MemoryBytes).toBe(summary[0].memfdBytes);
      // The end of the archive, then its entries: at least two GETs.
      expect(rec.Requests).toBeGreaterThanOrEqual(2);
      expect(rec.Requests).toBe(summary[0].gets);
      expect(rec.InitDuration).toBe(summary[0].durationMs);
    });
  });

  test('AWS_LAMBDA_LOG_LEVEL=INFO drops the debug lines: the summary alone', async () => {
    await withFunction(config('native.zip', { AWS_LAMBDA_LOG_FORMAT: 'JSON', AWS_LAMBDA_LOG_LEVEL: 'INFO', SNAPLOADER_DEBUG: '1' }), async (fn) => {
      expect((await fn.invoke({})).status).toBe(200);
      const lines = ourLines(fn);
      expectLambdaFields(lines);
      expect(lines.map((l) => [l.level, l.component])).toEqual([['INFO', 'init']]);
    });
  });

  test('a failed init: the failure is an ERROR line with its errorCode, every line JSON', async () => {
    await withFunction(config('not-a-zip.zip', { AWS_LAMBDA_LOG_FORMAT: 'JSON', AWS_LAMBDA_LOG_LEVEL: 'DEBUG', SNAPLOADER_DEBUG: 'true' }), async (fn) => {
      expect((await fn.invoke({})).status).toBe(502);
      const lines = ourLines(fn);
      expectLambdaFields(lines);
      const errors = lines.filter((l) => l.level === 'ERROR');
      expect(errors.length).toBeGreaterThanOrEqual(1);
      for (const e of errors) {
        expect(e).toEqual(expect.objectContaining({ component: 'helper', errorCode: 'NOT_A_ZIP', message: expect.stringMatching(/^NOT_A_ZIP: not a zip archive/) }));
      }
    });
  });
});

describe('text format', () => {
  test('unchanged, with the EMF record as its own line after the summary when SNAPLOADER_METRICS=emf', async () => {
    await withFunction(config('native.zip', { AWS_LAMBDA_LOG_FORMAT: 'Text', AWS_LAMBDA_LOG_LEVEL: 'ERROR', SNAPLOADER_METRICS: 'emf' }), async (fn) => {
      expect((await fn.invoke({})).status).toBe(200);
      expect(fn.snaploaderLog()).toEqual([expect.stringMatching(/^snaploader: loaded 5 files \(3\.\d MiB\) from s3:\/\/logs\/native\.zip in \d+\.\d\d s: 2 in memory/)]);
      const emf = fn.functionLog().filter((l) => l.startsWith('{"_aws"'));
      expect(emf).toHaveLength(1);
      expect(JSON.parse(emf[0])).toEqual(expect.objectContaining({ Files: 5, Retries: 0 }));
    });
  });
});
