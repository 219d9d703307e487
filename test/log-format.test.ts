/**
 * Lambda's JSON log lines (docs/architecture.md, "Logs"): each component's formatter, run for
 * real where it lives (wrapper.sh, the helper, the preload library, the init program), with
 * bytes that need escaping: quotes, backslashes, control bytes, bytes that are not UTF-8.
 * Values with raw bytes reach the environment through bash $'...' quoting.
 */
import { spawn } from 'node:child_process';
import { HELPER, INIT_JS, PRELOAD, requireBuilt, WRAPPER } from './support/paths';
import { jsonLine, readLogFormat, shows } from '../src/log-format';
import { loadConfig } from '../src/config';
import { emfRecord } from '../src/metrics';

/** A value holding a quote, a backslash, SOH, 0xff (not UTF-8) and é (UTF-8). */
const NASTY = String.raw`$'/no"such\\file\x01\xff\xc3\xa9'`;
const TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

interface Run { code: number | null; stderr: Buffer }

/** Runs argv with `exports` (bash assignments, raw bytes allowed) on top of a bare environment. */
function run(exports: string, argv: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/bash', ['-c', `${exports}; exec "$@"`, 'run', ...argv], {
      env: { PATH: '/usr/bin:/bin', HOME: '/tmp' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    const err: Buffer[] = [];
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr: Buffer.concat(err) }));
  });
}

/** Every line as a JSON object; fails on a line that is not JSON or output that is not UTF-8. */
function jsonLines(out: Buffer): Record<string, unknown>[] {
  const text = new TextDecoder('utf-8', { fatal: true }).decode(out);
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
}

const JSON_FORMAT = 'export AWS_LAMBDA_LOG_FORMAT=JSON';

beforeAll(() => requireBuilt());

describe('the init program formatter (src/log-format.ts)', () => {
  test('escapes quotes, backslashes, control characters and lone surrogates, and carries the fields', () => {
    const line = jsonLine('ERROR', 'a"b\\c\u0001\n\ud800é', { errorCode: 'X' }, new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)));
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(line).toContain('\\ud800');
    expect(JSON.parse(line)).toEqual({
      timestamp: '2024-01-02T03:04:05.006Z', level: 'ERROR', message: 'a"b\\c\u0001\n\ud800é',
      logger: 'snaploader', component: 'init', errorCode: 'X',
    });
  });

  test('JSON only for the word json in any case; AWS_LAMBDA_LOG_LEVEL only with JSON, unknown levels drop nothing', () => {
    expect(readLogFormat({ AWS_LAMBDA_LOG_FORMAT: 'Text', AWS_LAMBDA_LOG_LEVEL: 'ERROR' })).toEqual({ json: false, minRank: 0 });
    expect(readLogFormat({})).toEqual({ json: false, minRank: 0 });
    const warn = readLogFormat({ AWS_LAMBDA_LOG_FORMAT: ' json ', AWS_LAMBDA_LOG_LEVEL: 'Warn' });
    expect(warn.json).toBe(true);
    expect(['DEBUG', 'INFO', 'WARN', 'ERROR'].filter((l) => shows(warn, l as 'DEBUG'))).toEqual(['WARN', 'ERROR']);
    const odd = readLogFormat({ AWS_LAMBDA_LOG_FORMAT: 'JSON', AWS_LAMBDA_LOG_LEVEL: 'loud' });
    expect(shows(odd, 'DEBUG')).toBe(true);
    expect(shows(readLogFormat({ AWS_LAMBDA_LOG_FORMAT: 'JSON', AWS_LAMBDA_LOG_LEVEL: 'TRACE' }), 'DEBUG')).toBe(true);
  });

  test('the summary as an embedded-metric-format record: every metric declared and valued', () => {
    const rec = emfRecord({ files: 5, bytes: 100, memfdBytes: 60, tmpBytes: 40, durationMs: 250, gets: 3, retries: 1 }, 'fn', 1700000000000) as Record<string, any>;
    const decl = rec._aws.CloudWatchMetrics[0];
    expect(rec._aws.Timestamp).toBe(1700000000000);
    expect(decl.Namespace).toBe('snaploader');
    expect(decl.Dimensions).toEqual([['FunctionName']]);
    expect(rec.FunctionName).toBe('fn');
    expect(Object.fromEntries(decl.Metrics.map((m: { Name: string }) => [m.Name, rec[m.Name]]))).toEqual({
      Files: 5, Bytes: 100, MemoryBytes: 60, TmpBytes: 40, InitDuration: 250, Requests: 3, Retries: 1,
    });
  });

  test('SNAPLOADER_METRICS is an enumeration: off by default, emf in any case, anything else CONFIG_INVALID', () => {
    const env = { SNAPLOADER_SOURCE: 's3://bucket/k.zip' };
    expect(loadConfig(env).metrics).toBe('off');
    expect(loadConfig({ ...env, SNAPLOADER_METRICS: ' EMF ' }).metrics).toBe('emf');
    expect(loadConfig({ ...env, SNAPLOADER_METRICS: '' }).metrics).toBe('off');
    expect(() => loadConfig({ ...env, SNAPLOADER_METRICS: 'json' })).toThrow(expect.objectContaining({
      code: 'CONFIG_INVALID', message: 'SNAPLOADER_METRICS="json" is not valid: use off or emf',
    }));
  });

  test('init.js run outside the helper: its failure is one ERROR line with its errorCode', async () => {
    const r = await run(JSON_FORMAT, [process.execPath, INIT_JS]);
    expect(r.code).toBe(1);
    const lines = jsonLines(r.stderr);
    expect(lines).toEqual([expect.objectContaining({ level: 'ERROR', component: 'init', logger: 'snaploader', errorCode: 'NOT_UNDER_HELPER', timestamp: expect.stringMatching(TS) })]);
  });
});

describe('wrapper.sh', () => {
  const fail = (extra: string) => run(`export SNAPLOADER_SOURCE=s3://b/k SNAPLOADER_DEBUG=1 SNAPLOADER_NODE=${NASTY}; ${extra}`, [WRAPPER, '/bin/true']);

  test('its failure line escapes quotes, backslashes, control bytes and bytes that are not UTF-8', async () => {
    const r = await fail(JSON_FORMAT);
    expect(r.code).toBe(127);
    const lines = jsonLines(r.stderr);
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.filter((l) => l.level === 'DEBUG').every((l) => l.component === 'wrapper')).toBe(true);
    expect(lines[lines.length - 1]).toEqual({
      timestamp: expect.stringMatching(TS), level: 'ERROR', logger: 'snaploader', component: 'wrapper', errorCode: 'CONFIG_INVALID',
      message: 'SNAPLOADER_NODE=/no"such\\file\u0001\ufffdé is not an executable file',
    });
  });

  test('AWS_LAMBDA_LOG_LEVEL=ERROR drops its debug lines; text format ignores the level', async () => {
    expect(jsonLines((await fail(`${JSON_FORMAT} AWS_LAMBDA_LOG_LEVEL=ERROR`)).stderr).map((l) => l.level)).toEqual(['ERROR']);
    const text = (await fail('export AWS_LAMBDA_LOG_FORMAT=Text AWS_LAMBDA_LOG_LEVEL=ERROR')).stderr.toString('latin1').split('\n');
    expect(text.filter((l) => l.startsWith('[snaploader:wrapper] ')).length).toBeGreaterThan(0);
    expect(text).toContain('snaploader: SNAPLOADER_NODE=/no"such\\file\x01\xff\xc3\xa9 is not an executable file');
  });
});

describe('the helper', () => {
  const helper = (extra: string) => run(`export SNAPLOADER_DEBUG=1 SNAPLOADER_ON_ERROR=${NASTY}; ${extra}`, [HELPER, '/bin/sh', '-c', 'exit 3', '--', '/bin/true']);

  test('its failure line escapes what it quotes (control bytes shown as spaces), with errorCode', async () => {
    const r = await helper(JSON_FORMAT);
    expect(r.code).toBe(1);
    const lines = jsonLines(r.stderr);
    expect(lines[lines.length - 1]).toEqual({
      timestamp: expect.stringMatching(TS), level: 'ERROR', logger: 'snaploader', component: 'helper', errorCode: 'CONFIG_INVALID',
      message: 'SNAPLOADER_ON_ERROR="/no"such\\file \ufffdé" is not valid: use fail or continue',
    });
  });

  test('debug lines are DEBUG, and gone at AWS_LAMBDA_LOG_LEVEL=INFO; a failed init program is INIT_FAILED', async () => {
    const ok = (extra: string) => run(`export SNAPLOADER_DEBUG=1; ${extra}`, [HELPER, '/bin/sh', '-c', 'exit 3', '--', '/bin/true']);
    const all = jsonLines((await ok(JSON_FORMAT)).stderr);
    expect(new Set(all.map((l) => l.level))).toEqual(new Set(['DEBUG', 'ERROR']));
    const info = jsonLines((await ok(`${JSON_FORMAT} AWS_LAMBDA_LOG_LEVEL=info`)).stderr);
    expect(info).toEqual([expect.objectContaining({ level: 'ERROR', errorCode: 'INIT_FAILED', message: 'init program exited with status 3 before finishing' })]);
  });
});

describe('the preload library', () => {
  const preloaded = (extra: string) => run(`export LD_PRELOAD=${PRELOAD} SNAPLOADER_DEBUG=maybe SNAPLOADER_MAP=${NASTY}; ${extra}`, ['/bin/cat', '/dev/null']);

  test('its debug and warning lines escape the mapping file name byte for byte', async () => {
    const lines = jsonLines((await preloaded(JSON_FORMAT)).stderr);
    expect(lines.map((l) => [l.level, l.component])).toEqual([['WARN', 'preload'], ['DEBUG', 'preload']]);
    expect(lines[1].message).toBe('ignoring mapping file /no"such\\file\u0001\ufffdé: cannot open it: No such file or directory');
    expect(lines[1].timestamp).toMatch(TS);
  });

  test('AWS_LAMBDA_LOG_LEVEL=WARN keeps the warning only; text lines are as before', async () => {
    expect(jsonLines((await preloaded(`${JSON_FORMAT} AWS_LAMBDA_LOG_LEVEL=WARN`)).stderr).map((l) => l.level)).toEqual(['WARN']);
    expect((await preloaded('export AWS_LAMBDA_LOG_FORMAT=Text')).stderr.toString('latin1').split('\n')).toEqual([
      'snaploader-preload: warning: SNAPLOADER_DEBUG="maybe" is not one of 1, true, yes, on, 0, false, no, off: taken as on',
      'snaploader-preload: ignoring mapping file /no"such\\file\x01\xff\xc3\xa9: cannot open it: No such file or directory',
      '',
    ]);
  });
});
