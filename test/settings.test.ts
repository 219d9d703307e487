/**
 * One grammar for settings (docs/architecture.md, "Settings grammar"): every SNAPLOADER_*
 * variable that more than one component reads is given the same table of values, and each
 * component is run for real, on its own, to see what it made of the value:
 *   wrapper.sh        with a stub in place of the helper (so only the wrapper acts);
 *   the helper        run directly, with a shell one-liner as its init program;
 *   the init program  init.js with a socket of ours in place of the helper's;
 *   the preload lib   LD_PRELOAD'ed into /bin/cat.
 */
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { HELPER, INIT_JS, OPT, PRELOAD, requireBuilt } from './support/paths';
import { baseEnv } from './support/run';

type Env = Record<string, string>;
interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  /** What the init program sent on the control socket (percent-decoded), for init.js runs. */
  requests: string[];
}

let dir: string;
let stubWrapper: string;
let notExecutable: string;

beforeAll(() => {
  requireBuilt();
  dir = mkdtempSync(join(tmpdir(), 'snaploader-settings-'));
  // The layer with a stub in place of the helper: what the wrapper decided is all that runs.
  const opt = join(dir, 'opt');
  cpSync(OPT, opt, { recursive: true });
  const stub = join(opt, 'snaploader', 'bin', 'snaploader-helper');
  rmSync(stub);
  writeFileSync(stub, '#!/bin/sh\necho HELPER RAN\n');
  chmodSync(stub, 0o755);
  stubWrapper = join(opt, 'snaploader', 'wrapper.sh');
  notExecutable = join(dir, 'not-node');
  writeFileSync(notExecutable, 'text', { mode: 0o644 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function collect(stream: Readable | null): Promise<string> {
  return new Promise((resolve) => {
    if (!stream) return resolve('');
    let s = '';
    stream.on('data', (d: Buffer) => (s += d.toString()));
    stream.on('end', () => resolve(s));
    stream.on('error', () => resolve(s));
  });
}

function exec(argv: string[], env: Env, control = false): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe', ...(control ? ['pipe' as const] : [])] });
    const requests: string[] = [];
    if (control) {
      // The helper's side of the protocol: every request is answered OK.
      const sock = child.stdio[3] as Readable & Writable;
      let buffered = '';
      sock.on('data', (d: Buffer) => {
        buffered += d.toString('latin1');
        for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
          requests.push(decodeURIComponent(buffered.slice(0, nl)));
          buffered = buffered.slice(nl + 1);
          sock.write('OK\n');
        }
      });
      sock.on('error', () => undefined);
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
    child.on('error', reject);
    void Promise.all([collect(child.stdout), collect(child.stderr), new Promise<number | null>((r) => child.on('close', r))]).then(
      ([stdout, stderr, code]) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr, requests });
      },
    );
  });
}

/** An archive source that fails at once, after the configuration has been read. */
const SOURCE: Env = {
  SNAPLOADER_SOURCE: 's3://bucket/key.zip', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9', SNAPLOADER_MAX_ATTEMPTS: '1',
  AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y',
};
const RUNTIME = ['/bin/sh', '-c', 'echo RUNTIME RAN'];

const wrapper = (env: Env) => exec([stubWrapper, ...RUNTIME], baseEnv({ SNAPLOADER_NODE: process.execPath, ...env }));
const helper = (env: Env, init = ['/bin/sh', '-c', 'exit 3']) => exec([HELPER, ...init, '--', ...RUNTIME], baseEnv(env));
const initProgram = (env: Env) =>
  exec([process.execPath, INIT_JS], baseEnv({ SNAPLOADER_CONTROL_FD: '3', SNAPLOADER_HELPER_PID: String(process.pid), ...env }), true);
const preloaded = (env: Env) =>
  exec(['/bin/cat', '/dev/null'], baseEnv({ LD_PRELOAD: PRELOAD, SNAPLOADER_MAP: join(dir, 'no-such-map'), ...env }));

/** The init program's one-line failure, as it sent it to the helper. */
const initError = (o: Outcome) => o.requests.find((r) => r.startsWith('ERROR '))?.slice('ERROR '.length) ?? '';

/** How a value was taken: the variable set to it, or unset for undefined. */
const withValue = (name: string, value: string | undefined, env: Env = {}): Env =>
  value === undefined ? env : { ...env, [name]: value };

const show = (v: string | undefined) => (v === undefined ? 'unset' : JSON.stringify(v));

describe('SNAPLOADER_DEBUG, a switch: wrapper, helper, init program and preload library agree', () => {
  type Debug = 'off' | 'on' | 'on, with a warning';
  const TABLE: [string | undefined, Debug][] = [
    [undefined, 'off'], ['', 'off'], ['   ', 'off'], ['\t\n', 'off'],
    ['1', 'on'], ['true', 'on'], ['TRUE', 'on'], ['True', 'on'], ['yes', 'on'], ['YeS', 'on'], ['on', 'on'], ['ON', 'on'],
    [' on ', 'on'], ['\ttrue\n', 'on'],
    ['0', 'off'], ['false', 'off'], ['FALSE', 'off'], ['no', 'off'], ['No', 'off'], ['off', 'off'], ['OFF', 'off'], [' off\r', 'off'],
    ['2', 'on, with a warning'], ['maybe', 'on, with a warning'], ['tru', 'on, with a warning'], ['o n', 'on, with a warning'],
    ['on\u00a0', 'on, with a warning'], ['\u0130', 'on, with a warning'], ['yes please', 'on, with a warning'],
  ];
  const WARNING = 'is not one of 1, true, yes, on, 0, false, no, off: taken as on';
  const seen = (stderr: string, prefix: string): Debug => {
    const lines = stderr.split('\n').filter((l) => l.startsWith(prefix));
    if (lines.length === 0) return 'off';
    return lines.some((l) => l.includes(`warning: SNAPLOADER_DEBUG="`) && l.endsWith(WARNING)) ? 'on, with a warning' : 'on';
  };

  test.each(TABLE)('SNAPLOADER_DEBUG=%j is %s everywhere', async (value, expected) => {
    const env = withValue('SNAPLOADER_DEBUG', value);
    const [w, h, i, p] = await Promise.all([
      wrapper({ ...SOURCE, ...env }), helper(env), initProgram({ ...SOURCE, ...env }), preloaded(env),
    ]);
    // Nothing stops because of a debug switch: the wrapper handed over, the helper ran the init
    // program (and reported its exit), the init program got as far as S3, cat ran.
    expect([w.code, w.stdout]).toEqual([0, 'HELPER RAN\n']);
    expect(h.stderr).toContain('snaploader: init program exited with status 3 before finishing\n');
    expect(initError(i)).toMatch(/^SOURCE_UNREACHABLE: /);
    expect(p.code).toBe(0);
    expect({
      wrapper: seen(w.stderr, '[snaploader:wrapper] '),
      helper: seen(h.stderr, 'snaploader-helper: '),
      'init program': seen(i.stderr, 'snaploader: debug: '),
      'preload library': seen(p.stderr, 'snaploader-preload: '),
    }).toEqual({ wrapper: expected, helper: expected, 'init program': expected, 'preload library': expected });
  });
});

describe('SNAPLOADER_ON_ERROR, an enumeration: wrapper, helper and init program agree', () => {
  type OnError = 'fail' | 'continue' | 'invalid';
  const TABLE: [string | undefined, OnError][] = [
    [undefined, 'fail'], ['', 'fail'], [' \t', 'fail'],
    ['fail', 'fail'], ['FAIL', 'fail'], ['Fail', 'fail'], [' fail\n', 'fail'],
    ['continue', 'continue'], ['CONTINUE', 'continue'], ['Continue', 'continue'], ['continue ', 'continue'], ['\tcOnTiNuE', 'continue'],
    ['ignore', 'invalid'], ['1', 'invalid'], ['true', 'invalid'], ['cont', 'invalid'], ['continue please', 'invalid'],
    ['cont\u0130nue', 'invalid'], ['continue\u00a0', 'invalid'],
  ];
  const invalidLine = /^snaploader: SNAPLOADER_ON_ERROR="[^\n]*" is not valid: use fail or continue\n$/;

  /** The wrapper and the helper, each made to fail: did the runtime start, or did they refuse the value? */
  const byOutcome = (o: Outcome, failCode: number): OnError | string => {
    if (o.code === 0 && o.stdout === 'RUNTIME RAN\n' && /^snaploader: warning: /.test(o.stderr)) return 'continue';
    if (o.code === failCode && o.stdout === '' && !invalidLine.test(o.stderr)) return 'fail';
    if (o.code === 1 && o.stdout === '' && invalidLine.test(o.stderr)) return 'invalid';
    return `unexpected: exit ${o.code}, stdout ${JSON.stringify(o.stdout)}, stderr ${JSON.stringify(o.stderr)}`;
  };
  const byInit = (o: Outcome): OnError | string => {
    if (/^CONFIG_INVALID: SNAPLOADER_ON_ERROR="[^\n]*" is not valid: use fail or continue$/.test(initError(o))) return 'invalid';
    const m = /^snaploader: debug: \+\d+ms settings: on error (\w+);/m.exec(o.stderr);
    return m ? m[1] : `unexpected: ${initError(o)} ${o.stderr}`;
  };

  test.each(TABLE)('SNAPLOADER_ON_ERROR=%j is %s everywhere', async (value, expected) => {
    const env = withValue('SNAPLOADER_ON_ERROR', value);
    const marker = join(dir, `init-ran-${Math.random().toString(36).slice(2)}`);
    const [w, h, i] = await Promise.all([
      wrapper({ ...SOURCE, ...env, SNAPLOADER_NODE: notExecutable }),
      helper(env, ['/bin/sh', '-c', `: > ${marker}; exit 3`]),
      initProgram({ ...SOURCE, ...env, SNAPLOADER_DEBUG: '1' }),
    ]);
    expect({ wrapper: byOutcome(w, 127), helper: byOutcome(h, 1), 'init program': byInit(i) }).toEqual({
      wrapper: expected, helper: expected, 'init program': expected,
    });
    // A value nobody understands stops the init before the init program is even started.
    expect(existsSync(marker)).toBe(expected !== 'invalid');
  });
});

describe('SNAPLOADER_TIMEOUT, a number: the helper and the init program agree', () => {
  const TABLE: [string | undefined, string | undefined, number | 'invalid'][] = [
    [undefined, undefined, 9], ['', undefined, 9], ['  ', 'snap-start', 600], [undefined, 'on-demand', 9],
    [undefined, ' on-demand ', 9], [undefined, 'snap-start', 600], [undefined, 'provisioned-concurrency', 600],
    ['30', undefined, 30], [' 30 ', undefined, 30], ['\t45\n', 'snap-start', 45], ['0042', undefined, 42],
    ['1', undefined, 1], ['3600', undefined, 3600],
    ['0', undefined, 'invalid'], ['3601', undefined, 'invalid'], ['-1', undefined, 'invalid'], ['+5', undefined, 'invalid'],
    ['1.5', undefined, 'invalid'], ['5s', undefined, 'invalid'], ['5 0', undefined, 'invalid'], ['abc', undefined, 'invalid'],
    ['\u0665', undefined, 'invalid'], ['99999999999999999999999', undefined, 'invalid'], ['5\u00a0', undefined, 'invalid'],
  ];

  test.each(TABLE)('SNAPLOADER_TIMEOUT=%j with AWS_LAMBDA_INITIALIZATION_TYPE=%j: %s', async (value, type, expected) => {
    const env = withValue('AWS_LAMBDA_INITIALIZATION_TYPE', type, withValue('SNAPLOADER_TIMEOUT', value, { SNAPLOADER_DEBUG: '1' }));
    const [h, i] = await Promise.all([helper(env), initProgram({ ...SOURCE, ...env })]);
    const helperSaw = /^snaploader: SNAPLOADER_TIMEOUT="[^\n]*" is not valid: /m.test(h.stderr)
      ? 'invalid'
      : Number(/^snaploader-helper: init timeout (\d+) s$/m.exec(h.stderr)?.[1]);
    const initSaw = /^CONFIG_INVALID: SNAPLOADER_TIMEOUT="[^\n]*" must be a whole number from 1 to 3600$/.test(initError(i))
      ? 'invalid'
      : Number(/^snaploader: debug: \+\d+ms settings: .*; timeout (\d+) s;/m.exec(i.stderr)?.[1]);
    expect({ helper: helperSaw, 'init program': initSaw }).toEqual({ helper: expected, 'init program': expected });
  });
});

describe('SNAPLOADER_SOURCE, SNAPLOADER_BUCKET, SNAPLOADER_KEY: the wrapper and the init program agree on "configured"', () => {
  const VALUES: [string | undefined, boolean][] = [[undefined, false], ['', false], ['  ', false], ['\t\n', false], ['x', true], [' x ', true]];
  const CASES = ['SNAPLOADER_SOURCE', 'SNAPLOADER_BUCKET', 'SNAPLOADER_KEY'].flatMap((name) =>
    VALUES.map(([value, configured]) => [name, value, configured] as const),
  );

  test.each(CASES)('%s=%j: configured is %s', async (name, value, configured) => {
    const env = withValue(name, value);
    const [w, i] = await Promise.all([wrapper(env), initProgram(env)]);
    // The wrapper hands over to the helper only with an archive; without one the runtime starts unchanged.
    const wrapperSaw = w.stdout === 'HELPER RAN\n' ? true : w.stdout === 'RUNTIME RAN\n' ? false : `unexpected ${w.stdout}`;
    const initSaw = !initError(i).startsWith('CONFIG_INVALID: no archive configured');
    expect([show(value), { wrapper: wrapperSaw, 'init program': initSaw }]).toEqual([
      show(value), { wrapper: configured, 'init program': configured },
    ]);
  });
});
