// Black-box tests of bootstrap/snaploader-helper.c: the real binary, a fake init program
// (test/fixtures/helper/fake-init.js, driven by a JSON script) and a probe runtime
// (test/fixtures/helper/probe-runtime.py, or /bin/sh) that prints what it inherited.
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { HELPER as BUILT_HELPER, PRELOAD, ROOT } from './support/paths';

// SNAPLOADER_TEST_HELPER runs the suite against another build of the helper (e.g. a mutant).
const HELPER = process.env.SNAPLOADER_TEST_HELPER ?? BUILT_HELPER;

const FIXTURES = join(ROOT, 'test', 'fixtures', 'helper');
const FAKE_INIT = join(FIXTURES, 'fake-init.js');
const PROBE = join(FIXTURES, 'probe-runtime.py');
const NODE = process.execPath;
// The real interpreter, not a pyenv shim, so the runtime's PID is the one the helper exec'd.
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)']).toString().trim();

type Step =
  | { send: string }
  | { sendRaw: string; replies?: number }
  | { sendPartial: string }
  | { write: { memfd: number; data: string } }
  | { waitForSignal: NodeJS.Signals }
  | { kill: NodeJS.Signals }
  | { exit: number }
  | { sleep: number }
  | { ignore: NodeJS.Signals }
  | { holdSocket: number }
  | { mapShared: { memfd: number; ms: number; sleeps?: number } };

interface LogEntry {
  env?: { SNAPLOADER_CONTROL_FD?: string; SNAPLOADER_HELPER_PID?: string; LD_PRELOAD?: string | null; NODE_OPTIONS?: string | null };
  sent?: string;
  reply?: string;
  signal?: string;
  holder?: number;
  mapper?: number;
}

interface Probe {
  pid: number;
  env: Record<string, string | null>;
  memfds: {
    fd: number;
    target: string;
    size: number;
    content: string;
    seals: number;
    writeError: string | null;
    truncateError: string | null;
  }[];
}

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  pid: number;
  stdout: string;
  stderr: string;
  fd3: string;
  log: LogEntry[];
  replies: string[];
}

interface RunOptions {
  script?: Step[];
  /** Overrides `<node> fake-init.js -- <runtime>` completely. */
  argv?: string[];
  init?: string[];
  runtime?: string[];
  env?: Record<string, string>;
  /** Give the helper a pipe at fd 3 (read back into `fd3`). */
  fd3?: boolean;
  /** Start the helper with these of its fds 0-2 closed (through a shell that closes them). */
  closeFds?: number[];
  /** Called with the child once the fake init program prints "fake-init: ready". */
  onReady?: (pid: number) => void;
}

let tmp: string;
let runs = 0;

beforeAll(() => {
  if (!existsSync(HELPER)) {
    throw new Error(`${HELPER} is missing: run \`make build\` (or build.mjs buildHelper) first`);
  }
  tmp = mkdtempSync(join(tmpdir(), 'snaploader-helper-test-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('SNAPLOADER_') && !k.startsWith('FAKE_INIT_')) env[k] = v;
  }
  return env;
}

function collect(stream: Readable | null | undefined): Promise<string> {
  return new Promise((resolve) => {
    if (!stream) return resolve('');
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks).toString()));
    stream.on('error', () => resolve(Buffer.concat(chunks).toString()));
  });
}

async function runHelper(opts: RunOptions): Promise<Result> {
  const logFile = join(tmp, `log-${++runs}.jsonl`);
  const argv = opts.argv ?? [...(opts.init ?? [NODE, FAKE_INIT]), '--', ...(opts.runtime ?? [PYTHON, PROBE])];
  const script = JSON.stringify(opts.script ?? [{ send: 'DONE' }]);
  // A script too large for one environment string goes in a file.
  const scriptVar: Record<string, string> = script.length < 65536 ? { FAKE_INIT_SCRIPT: script } : { FAKE_INIT_SCRIPT_FILE: join(tmp, `script-${runs}.json`) };
  if (scriptVar.FAKE_INIT_SCRIPT_FILE) writeFileSync(scriptVar.FAKE_INIT_SCRIPT_FILE, script);
  const env = { ...baseEnv(), ...scriptVar, FAKE_INIT_LOG: logFile, FAKE_INIT_PYTHON: PYTHON, ...opts.env };
  const closing = (opts.closeFds ?? []).map((fd) => `exec ${fd}>&-;`).join(' ');
  const [cmd, args] = closing ? ['/bin/sh', ['-c', `${closing} exec "$@"`, 'sh', HELPER, ...argv]] : [HELPER, argv];
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe', ...(opts.fd3 ? ['pipe' as const] : [])] });
  const pid = child.pid as number;
  if (opts.onReady) {
    const onReady = opts.onReady;
    let seen = '';
    child.stderr?.on('data', (c: Buffer) => {
      if (seen.includes('fake-init: ready')) return;
      seen += c.toString();
      if (seen.includes('fake-init: ready')) onReady(pid);
    });
  }
  const [stdout, stderr, fd3, [code, signal]] = await Promise.all([
    collect(child.stdout),
    collect(child.stderr),
    collect(opts.fd3 ? (child.stdio[3] as Readable) : null),
    new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      // A helper that hangs must fail the test, not leave processes behind.
      const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('close', (c, s) => {
        clearTimeout(timer);
        resolve([c, s]);
      });
    }),
  ]);
  const log: LogEntry[] = existsSync(logFile)
    ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogEntry)
    : [];
  const replies = log.filter((e) => e.reply !== undefined).map((e) => e.reply as string);
  return { code, signal, pid, stdout, stderr, fd3, log, replies };
}

function probe(r: Result): Probe {
  try {
    return JSON.parse(r.stdout) as Probe;
  } catch {
    throw new Error(`runtime printed no probe output (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

/** Percent-encoding as the protocol defines it, over the UTF-8 bytes of s. */
function enc(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b <= 0x20 || b === 0x25 || b >= 0x7f ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  }
  return out;
}

function dec(s: string): string {
  return Buffer.from(s.replace(/%([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}

const ALL_SEALS = 1 | 2 | 4 | 8; // F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE

describe('on success the helper becomes the runtime', () => {
  test('the runtime has the PID of the helper, which the init program was told', async () => {
    const r = await runHelper({ runtime: ['/bin/sh', '-c', 'echo "$$"'] });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(Number(r.stdout.trim())).toBe(r.pid);
    expect(r.log[0].env?.SNAPLOADER_HELPER_PID).toBe(String(r.pid));
    expect(r.log[0].env?.SNAPLOADER_CONTROL_FD).toMatch(/^\d+$/);
    expect(r.replies).toEqual(['OK']);
  });

  test('memfds are inherited with the requested size and the written content, and sealed', async () => {
    const r = await runHelper({
      script: [
        { send: `MEMFD 5 ${enc('lib torch.so')}` },
        { send: 'MEMFD 0 empty' },
        { send: 'MEMFD 1048576 big' },
        { write: { memfd: 0, data: 'hello' } },
        { write: { memfd: 2, data: 'start' } },
        { send: 'DONE' },
      ],
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const fds = r.replies.slice(0, 3).map((rep) => {
      expect(rep).toMatch(/^OK \d+$/);
      return Number(rep.slice(3));
    });
    const p = probe(r);
    expect(p.pid).toBe(r.pid);
    expect(p.memfds.map((m) => m.fd)).toEqual(fds);
    expect(p.memfds.map((m) => [m.target, m.size])).toEqual([
      ['/memfd:lib torch.so (deleted)', 5],
      ['/memfd:empty (deleted)', 0],
      ['/memfd:big (deleted)', 1048576],
    ]);
    expect(p.memfds[0].content).toBe('hello');
    expect(p.memfds[2].content.slice(0, 6)).toBe('start\0');
    for (const m of p.memfds) {
      expect(m.seals).toBe(ALL_SEALS);
      expect(m.writeError).toBe('EPERM');
      expect(m.truncateError).toBe('EPERM');
    }
  });

  describe('a memfd that is busy when it is sealed', () => {
    const kill = (pid: number | undefined): void => {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    const script = (ms: number): Step[] => [
      { send: 'MEMFD 4096 lib' },
      { write: { memfd: 0, data: 'hello' } },
      { mapShared: { memfd: 0, ms } },
      { send: 'DONE' },
    ];

    test('is sealed once the writable mapping a grandchild held is gone', async () => {
      const r = await runHelper({ env: { SNAPLOADER_DEBUG: '1' }, script: script(300) });
      kill(r.log.find((e) => e.mapper !== undefined)?.mapper);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/^snaploader-helper: memfd "lib" \(fd \d+\) is busy; sealing again in 5 ms \(\d+ ms left\)$/m);
      const [m] = probe(r).memfds;
      expect(m.content.slice(0, 5)).toBe('hello');
      expect(m.seals).toBe(ALL_SEALS);
      expect(m.writeError).toBe('EPERM');
    });

    test('the 1000 ms are for all the memfds together, not for each', async () => {
      // The first is let go once the helper has slept 6 times since the init program exited
      // (so it has retried the first a few times), the second after 5 s: the second is tried
      // with what is left of the 1000 ms, which each retry's debug line shows.
      const r = await runHelper({
        env: { SNAPLOADER_DEBUG: '1' },
        script: [
          { send: 'MEMFD 4096 first' },
          { send: 'MEMFD 4096 second' },
          { mapShared: { memfd: 0, ms: 5000, sleeps: 6 } },
          { mapShared: { memfd: 1, ms: 5000 } },
          { send: 'DONE' },
        ],
      });
      for (const e of r.log) kill(e.mapper);
      const retries = [...r.stderr.matchAll(/^snaploader-helper: memfd "(\w+)" \(fd \d+\) is busy; sealing again in (\d+) ms \((\d+) ms left\)$/gm)]
        .map((m) => ({ name: m[1], pause: Number(m[2]), left: Number(m[3]) }));
      const first = retries.filter((t) => t.name === 'first');
      const second = retries.filter((t) => t.name === 'second');
      expect(first.length).toBeGreaterThan(0);
      expect(second.length).toBeGreaterThan(0);
      // The second's time is what the first's pauses left of the 1000 ms, at most: with 1000 ms
      // of its own, its first retry would have (nearly) all of them left.
      const firstPaused = first.reduce((sum, t) => sum + t.pause, 0);
      expect(second[0].left).toBeLessThanOrEqual(1000 - firstPaused);
      expect(r.stderr).toMatch(/^snaploader: cannot seal memfd "second" \(fd \d+\): still busy \(EBUSY\) after 1000 ms of retries/m);
      expect(r.code).toBe(1);
    });

    test('one still mapped after 1000 ms: exit 1, naming the memfd and the likely cause', async () => {
      const r = await runHelper({ script: script(5000) });
      const mapper = r.log.find((e) => e.mapper !== undefined)?.mapper;
      // The helper gave up on its own: the mapping was still there when it exited.
      const mapperAlive = mapper !== undefined && process.kill(mapper, 0);
      kill(mapper);
      expect(mapperAlive).toBe(true);
      const fd = Number(r.replies[0].slice(3));
      expect(r.stderr).toBe(
        `snaploader: cannot seal memfd "lib" (fd ${fd}): still busy (EBUSY) after 1000 ms of retries: ` +
          'a process may still map it writable, or the kernel still holds one of its pages; ' +
          'start the function again (SNAPLOADER_DEBUG=1 shows each retry)\n',
      );
      expect(r.code).toBe(1);
    });
  });

  test('memfd names are percent-decoded and cut to 249 bytes', async () => {
    const r = await runHelper({
      script: [{ send: `MEMFD 1 ${enc('a\nb%c d')}` }, { send: `MEMFD 1 ${'n'.repeat(300)}` }, { send: 'DONE' }],
    });
    expect(r.code).toBe(0);
    expect(probe(r).memfds.map((m) => m.target)).toEqual([
      '/memfd:a\nb%c d (deleted)',
      `/memfd:${'n'.repeat(249)} (deleted)`,
    ]);
  });

  test('SETENV and UNSETENV are applied in order, with percent-decoded values', async () => {
    const odd = ' sp%ace\nline2\u0001 é';
    const r = await runHelper({
      env: { PRESET: 'was-here', KEEP: 'kept' },
      script: [
        { send: 'UNSETENV PRESET' },
        { send: 'SETENV A 1' },
        { send: 'SETENV A 2' },
        { send: 'UNSETENV B' },
        { send: 'SETENV B 3' },
        { send: 'SETENV C 4' },
        { send: 'UNSETENV C' },
        { send: `SETENV ODD ${enc(odd)}` },
        { send: 'SETENV EMPTY ' },
        { send: 'SETENV _x9 y' },
        { send: 'DONE' },
      ],
      runtime: [PYTHON, PROBE, 'PRESET', 'KEEP', 'A', 'B', 'C', 'ODD', 'EMPTY', '_x9', 'SNAPLOADER_CONTROL_FD'],
    });
    expect(r.stderr).toBe('');
    expect(r.replies).toEqual(Array(11).fill('OK'));
    expect(probe(r).env).toEqual({
      PRESET: null, KEEP: 'kept', A: '2', B: '3', C: null, ODD: odd, EMPTY: '', _x9: 'y', SNAPLOADER_CONTROL_FD: null,
    });
  });

  test('LD_PRELOAD and NODE_OPTIONS reach the runtime, not the init program', async () => {
    const r = await runHelper({
      env: { LD_PRELOAD: PRELOAD, NODE_OPTIONS: '--no-warnings' },
      runtime: [PYTHON, PROBE, 'LD_PRELOAD', 'NODE_OPTIONS'],
    });
    expect(r.code).toBe(0);
    expect(r.log[0].env).toMatchObject({ LD_PRELOAD: null, NODE_OPTIONS: null });
    expect(probe(r).env).toEqual({ LD_PRELOAD: PRELOAD, NODE_OPTIONS: '--no-warnings' });
  });

  test('the runtime starts with the signal dispositions the helper started with', async () => {
    // Ignored signals stay ignored across exec; the helper catches SIGTERM/SIGINT/SIGHUP while
    // the init program runs and must put back what it found (here: ignored) before the exec.
    // exec: the shell must not be the one reading, it blocks all signals while it waits for a child.
    const show = 'exec grep -E "^Sig(Blk|Ign|Cgt)" /proc/self/status';
    const ignoring = (cmd: string[]) => ['-c', 'trap "" TERM HUP USR1; exec "$@"', 'sh', ...cmd];
    const viaSh = (args: string[]) =>
      new Promise<string>((resolve) => {
        const env = { ...baseEnv(), FAKE_INIT_SCRIPT: JSON.stringify([{ send: 'DONE' }]) };
        const c = spawn('/bin/sh', args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
        void collect(c.stdout).then(resolve);
      });
    const expected = await viaSh(ignoring(['/bin/sh', '-c', show]));
    // The bits for HUP (1), USR1 (10) and TERM (15) are set; whatever else the caller (make,
    // a CI runner) ignores is inherited too and must come through the same.
    const ignored = BigInt(`0x${/^SigIgn:\t([0-9a-f]+)$/m.exec(expected)![1]}`);
    expect(ignored & 0x4201n).toBe(0x4201n);
    const got = await viaSh(ignoring([HELPER, NODE, FAKE_INIT, '--', '/bin/sh', '-c', show]));
    expect(got).toBe(expected);
  });

  test('a file descriptor the helper inherited is left open and untouched', async () => {
    const r = await runHelper({
      fd3: true,
      env: { _LAMBDA_TELEMETRY_LOG_FD: '3' },
      script: [{ send: 'MEMFD 4 one' }, { send: 'MEMFD 4 two' }, { send: 'DONE' }],
      runtime: ['/bin/sh', '-c', 'echo "telemetry ok from $$" >&3 && readlink /proc/$$/fd/3'],
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.fd3).toBe(`telemetry ok from ${r.pid}\n`);
    expect(r.stdout).not.toMatch(/memfd/);
    expect(r.replies.slice(0, 2)).not.toContain('OK 3');
    expect(r.log[0].env?.SNAPLOADER_CONTROL_FD).not.toBe('3');
  });

  test.each([[[2]], [[0, 2]], [[0, 1, 2]]])(
    'started with fds %j closed, the control socket and memfds stay above stdio; the runtime gets /dev/null there',
    async (closed) => {
      const r = await runHelper({
        closeFds: closed,
        env: { SNAPLOADER_DEBUG: '1' },
        script: [{ send: 'MEMFD 5 x' }, { send: 'SETENV X 1' }, { send: 'DONE' }],
        runtime: ['/bin/sh', '-c', `{ readlink /proc/$$/fd/0 /proc/$$/fd/2; echo "X=$X"; } >${join(tmp, `fds-${closed.join('')}`)}`],
      });
      // Before: the socket took a closed stdio number, so the helper's own stderr lines went
      // into the socket as replies, and the init program or the runtime wrote into it.
      expect(r.replies).toEqual([expect.stringMatching(/^OK \d+$/), 'OK', 'OK']);
      expect(Number(r.replies[0].slice(3))).toBeGreaterThanOrEqual(3);
      expect(Number(r.log[0].env?.SNAPLOADER_CONTROL_FD)).toBeGreaterThanOrEqual(3);
      expect(r.code).toBe(0);
      expect(readFileSync(join(tmp, `fds-${closed.join('')}`), 'utf8')).toBe('/dev/null\n/dev/null\nX=1\n');
    },
  );

  test('a caller that ignores SIGCHLD: the outcome is still seen, and the runtime inherits SIGCHLD ignored', async () => {
    // With SIGCHLD ignored the kernel reaps children itself and waitpid fails with ECHILD;
    // the helper catches SIGCHLD while the init program runs and puts SIG_IGN back for the runtime.
    const show = ['grep', '-E', '^SigIgn', '/proc/self/status'];
    const viaPython = (cmd: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const env = { ...baseEnv(), FAKE_INIT_SCRIPT: JSON.stringify([{ send: 'DONE' }]) };
        const py = 'import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); os.execvp(sys.argv[1], sys.argv[1:])';
        const c = spawn(PYTHON, ['-c', py, ...cmd], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        void Promise.all([collect(c.stdout), collect(c.stderr), new Promise<number | null>((r) => c.on('close', r))]).then(
          ([stdout, stderr, code]) => resolve({ code, stdout, stderr }),
        );
      });
    const expected = await viaPython(show);
    const ignored = BigInt(`0x${/^SigIgn:\t([0-9a-f]+)$/m.exec(expected.stdout)![1]}`);
    expect(ignored & (1n << 16n)).toBe(1n << 16n); // SIGCHLD (17)
    const got = await viaPython([HELPER, NODE, FAKE_INIT, '--', ...show]);
    expect(got.stderr).toBe('');
    expect(got.code).toBe(0);
    expect(got.stdout).toBe(expected.stdout);
    const failing = await viaPython([HELPER, NODE, FAKE_INIT, '--', '/bin/true']);
    expect(failing.stderr).toBe(''); // DONE and exit 0 are seen: no "cannot wait for the init program"
    expect(failing.code).toBe(0);
  });

  test('a runtime without a slash is found on PATH, with PATH as the init program set it', async () => {
    const bin = mkdtempSync(join(tmp, 'bin-'));
    writeFileSync(join(bin, 'my-runtime'), '#!/bin/sh\necho "my-runtime $1"\n');
    chmodSync(join(bin, 'my-runtime'), 0o755);
    const r = await runHelper({
      script: [{ send: `SETENV PATH ${enc(`${bin}:/usr/bin:/bin`)}` }, { send: 'DONE' }],
      runtime: ['my-runtime', 'arg'],
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('my-runtime arg\n');
  });
});

describe('when the init program fails the runtime does not start', () => {
  const RUNTIME = ['/bin/sh', '-c', 'echo RUNTIME RAN'];

  test('ERROR then exit 1: exit 1 with "snaploader: <message>"', async () => {
    const r = await runHelper({
      runtime: RUNTIME,
      script: [
        { send: 'MEMFD 5 x' },
        { send: 'SETENV X 1' },
        { send: `ERROR ${enc('cannot download s3://b/k.zip: HTTP 403 (100% sure)')}` },
        { exit: 1 },
      ],
    });
    expect(r.replies).toEqual([expect.stringMatching(/^OK \d+$/), 'OK', 'OK']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('snaploader: cannot download s3://b/k.zip: HTTP 403 (100% sure)\n');
    expect(r.stdout).toBe('');
  });

  test('an ERROR message with newlines is reported on one line', async () => {
    const r = await runHelper({ runtime: RUNTIME, script: [{ send: `ERROR ${enc('two\nlines')}` }, { exit: 1 }] });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('snaploader: two lines\n');
  });

  test('killed by SIGKILL', async () => {
    const r = await runHelper({ runtime: RUNTIME, script: [{ send: 'MEMFD 1 x' }, { kill: 'SIGKILL' }] });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('snaploader: init program was killed by signal 9 (SIGKILL)\n');
    expect(r.stdout).toBe('');
  });

  test('exit 0 without DONE', async () => {
    const r = await runHelper({ runtime: RUNTIME, script: [{ send: 'SETENV X 1' }] });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('snaploader: init program exited without finishing (no DONE)\n');
    expect(r.stdout).toBe('');
  });

  test('non-zero exit without ERROR', async () => {
    const r = await runHelper({ runtime: RUNTIME, script: [{ exit: 3 }] });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('snaploader: init program exited with status 3 before finishing\n');
    expect(r.stdout).toBe('');
  });

  test('non-zero exit after DONE', async () => {
    const r = await runHelper({ runtime: RUNTIME, script: [{ send: 'DONE' }, { exit: 2 }] });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('snaploader: init program exited with status 2 after DONE\n');
    expect(r.stdout).toBe('');
  });

  test('the init program cannot be started: the message names it', async () => {
    const r = await runHelper({ runtime: RUNTIME, init: ['/nonexistent/node', FAKE_INIT] });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('snaploader: cannot start init program /nonexistent/node: No such file or directory\n');
    expect(r.stdout).toBe('');
  });

  test.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)('%s sent to the helper is forwarded to the init program', async (sig) => {
    const r = await runHelper({
      runtime: RUNTIME,
      script: [{ waitForSignal: sig }],
      onReady: (pid) => process.kill(pid, sig),
    });
    expect(r.log).toContainEqual({ signal: sig });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('fake-init: ready\nsnaploader: init program exited with status 143 before finishing\n');
    expect(r.stdout).toBe('');
  });
});

describe('SNAPLOADER_ON_ERROR=continue', () => {
  const WARNING_END = '; starting the runtime without the archive (SNAPLOADER_ON_ERROR=continue)\n';

  test('warns, then starts the runtime without memfds or environment changes', async () => {
    const r = await runHelper({
      env: { SNAPLOADER_ON_ERROR: 'continue', PRESET: 'was-here' },
      script: [
        { send: 'MEMFD 5 x' },
        { write: { memfd: 0, data: 'hello' } },
        { send: 'SETENV X 1' },
        { send: 'UNSETENV PRESET' },
        { send: 'ERROR disk%20full' },
        { exit: 1 },
      ],
      runtime: [PYTHON, PROBE, 'X', 'PRESET'],
    });
    expect(r.stderr).toBe(`snaploader: warning: disk full${WARNING_END}`);
    expect(r.code).toBe(0);
    const p = probe(r);
    expect(p.pid).toBe(r.pid);
    expect(p.memfds).toEqual([]);
    expect(p.env).toEqual({ X: null, PRESET: 'was-here' });
  });

  test('also when the init program cannot be started', async () => {
    const r = await runHelper({
      env: { SNAPLOADER_ON_ERROR: 'continue' },
      init: ['/nonexistent/node'],
      runtime: ['/bin/sh', '-c', 'echo RUNTIME RAN'],
    });
    expect(r.stderr).toBe(
      `snaploader: warning: cannot start init program /nonexistent/node: No such file or directory${WARNING_END}`,
    );
    expect(r.stdout).toBe('RUNTIME RAN\n');
    expect(r.code).toBe(0);
  });

  test.each(['Continue', ' CONTINUE\t'])('%j is "continue": words are case-insensitive, surrounding whitespace ignored', async (value) => {
    const r = await runHelper({
      env: { SNAPLOADER_ON_ERROR: value },
      script: [{ exit: 1 }],
      runtime: ['/bin/sh', '-c', 'echo RUNTIME RAN'],
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('RUNTIME RAN\n');
  });

  test.each(['', ' ', 'fail', 'FAIL'])('%j is "fail"', async (value) => {
    const r = await runHelper({
      env: { SNAPLOADER_ON_ERROR: value },
      script: [{ exit: 1 }],
      runtime: ['/bin/sh', '-c', 'echo RUNTIME RAN'],
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('snaploader: init program exited with status 1 before finishing\n');
  });

  test.each(['1', 'continue please', 'ignore'])('%j is not valid: exit 1 naming the variable, the init program never runs', async (value) => {
    const r = await runHelper({ env: { SNAPLOADER_ON_ERROR: value }, runtime: ['/bin/sh', '-c', 'echo RUNTIME RAN'] });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`snaploader: SNAPLOADER_ON_ERROR="${value}" is not valid: use fail or continue\n`);
    expect(r.log).toEqual([]);
  });
});

describe('exit codes for the runtime and the command line', () => {
  test('runtime not found: 127', async () => {
    const r = await runHelper({ runtime: ['/nonexistent/runtime', 'x'] });
    expect(r.code).toBe(127);
    expect(r.stderr).toBe('snaploader: cannot execute /nonexistent/runtime: No such file or directory\n');
  });

  test('runtime not found on PATH: 127', async () => {
    const r = await runHelper({ runtime: ['snaploader-no-such-runtime'] });
    expect(r.code).toBe(127);
    expect(r.stderr).toBe('snaploader: cannot execute snaploader-no-such-runtime: No such file or directory\n');
  });

  test('runtime not executable: 126', async () => {
    const file = join(tmp, 'not-executable');
    writeFileSync(file, '#!/bin/sh\necho hi\n');
    chmodSync(file, 0o644);
    const r = await runHelper({ runtime: [file] });
    expect(r.code).toBe(126);
    expect(r.stderr).toBe(`snaploader: cannot execute ${file}: Permission denied\n`);
  });

  test.each([
    [[]],
    [['node', 'init.js']],
    [['node', 'init.js', 'sh']],
    [['node', 'init.js', '--']],
    [['--', '/bin/true']],
  ])('bad command line %j: usage, exit 2', async (argv) => {
    const r = await runHelper({ argv });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^snaploader: .+\nusage: snaploader-helper <init program> .* -- <runtime>/);
    expect(r.log).toEqual([]); // the init program never ran
  });
});

describe('malformed requests get ERR and change nothing', () => {
  const BAD = [
    'MEMFD -1 x',
    'MEMFD +1 x',
    'MEMFD 1x x',
    'MEMFD 0x10 x',
    'MEMFD  x',
    'MEMFD 9223372036854775808 x',
    'MEMFD 99999999999999999999999 x',
    'MEMFD 5',
    'MEMFD 5 a b',
    'MEMFD 5 %ZZ',
    'MEMFD 5 %4',
    'MEMFD 5 a%',
    'MEMFD 5 a%00b',
    'MEMFD 5 tab\there',
    'MEMFD 5 high\u00e9',
    'SETENV 1BAD x',
    'SETENV BAD-NAME x',
    'SETENV  x',
    'SETENV BAD',
    'SETENV BAD %G0',
    'SETENV BAD a%00',
    'SETENV BAD a b',
    'SETENV BAD cr\r',
    'UNSETENV',
    'UNSETENV KEEP extra',
    'UNSETENV 9KEEP',
    'ERROR',
    'ERROR bad%zz',
    'FROB x',
    'done',
    'DONE now',
    'DONE\u0000',
    '',
  ];

  test('each gets ERR <percent-encoded message> and the helper keeps serving', async () => {
    const r = await runHelper({
      env: { KEEP: 'kept' },
      script: [...BAD.map((l) => ({ send: l })), { send: 'MEMFD 3 good' }, { send: 'SETENV GOOD 1' }, { send: 'DONE' }],
      runtime: [PYTHON, PROBE, 'BAD', 'KEEP', 'GOOD'],
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.replies).toHaveLength(BAD.length + 3);
    BAD.forEach((line, i) => {
      expect([line, r.replies[i]]).toEqual([line, expect.stringMatching(/^ERR [^ ]+$/)]);
    });
    expect(r.replies.slice(BAD.length)).toEqual([expect.stringMatching(/^OK \d+$/), 'OK', 'OK']);
    const p = probe(r);
    expect(p.memfds.map((m) => m.target)).toEqual(['/memfd:good (deleted)']);
    expect(p.env).toEqual({ BAD: null, KEEP: 'kept', GOOD: '1' });
  });

  test('ERR messages say what is wrong', async () => {
    const r = await runHelper({
      script: [
        { send: 'MEMFD 1x x' },
        { send: 'SETENV 1BAD x' },
        { send: 'SETENV X %G0' },
        { send: 'FROB' },
        { send: 'DONE now' },
      ],
    });
    expect(r.replies.map((rep) => dec(rep.replace(/^ERR /, '')))).toEqual([
      expect.stringMatching(/^bad memfd size "1x"/),
      expect.stringMatching(/"1BAD" is not a valid variable name/),
      expect.stringMatching(/bad value: '%' is not followed by two hex digits/),
      'unknown request "FROB"',
      expect.stringMatching(/^DONE: wrong number of fields/),
    ]);
  });

  test('a SETENV of a 128 KiB LD_LIBRARY_PATH is applied; one byte more gets ERR naming the limit', async () => {
    // The kernel takes an environment string of at most 128 KiB with its NUL; a long library
    // path (thousands of tree directories) must fit, and one that cannot reach the runtime is
    // refused here rather than at execve.
    const max = 128 * 1024 - 'LD_LIBRARY_PATH='.length - 1;
    const dirs: string[] = [];
    for (let i = 0, len = -1; len < max; i++) {
      dirs.push(`/tmp/snaploader/pkg${i}/lib`);
      len += dirs[i].length + 1;
    }
    const value = dirs.join(':').slice(0, max);
    const r = await runHelper({
      script: [
        { send: `SETENV LD_LIBRARY_PATH ${enc(`${value}x`)}` },
        { send: `SETENV LD_LIBRARY_PATH ${enc(value)}` },
        { send: 'DONE' },
      ],
      runtime: ['/bin/sh', '-c', 'printf %s "$LD_LIBRARY_PATH" | wc -c'],
    });
    expect(r.stderr).toBe('');
    expect(r.replies.map((rep) => (rep.startsWith('ERR ') ? dec(rep.slice(4)) : rep))).toEqual([
      `SETENV LD_LIBRARY_PATH: a value of ${max + 1} bytes is too long: LD_LIBRARY_PATH=<value> may have at most 131072 bytes with its NUL (the kernel's limit for one environment string)`,
      'OK',
      'OK',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(String(max));
  });

  test('a line of 512 KiB with its newline is served (a fully encoded 128 KiB value fits); a longer one gets ERR', async () => {
    const encodedMax = `SETENV ENC ${'%41'.repeat((128 * 1024 - 'ENC='.length - 1))}`;
    const ok = `SETENV LONG ${'%41'.repeat(20000)}${'v'.repeat(512 * 1024 - 'SETENV LONG '.length - 60000 - 1)}`;
    const tooLong = `SETENV LONG2 ${'w'.repeat(512 * 1024 - 'SETENV LONG2 '.length)}`;
    const huge = `SETENV LONG3 ${'z'.repeat(2 * 1024 * 1024)}`;
    expect(ok.length + 1).toBe(512 * 1024);
    expect(tooLong.length + 1).toBe(512 * 1024 + 1);
    const r = await runHelper({
      script: [{ send: encodedMax }, { send: ok }, { send: tooLong }, { send: huge }, { send: 'SETENV AFTER 1' }, { send: 'DONE' }],
      runtime: ['/bin/sh', '-c', 'printf "%s %s %s\\n" "${#ENC}" "${LONG2-unset}" "$AFTER"'],
    });
    expect(r.code).toBe(0);
    expect(r.replies.map((rep) => (rep.startsWith('ERR ') ? dec(rep.slice(4)) : rep))).toEqual([
      'OK',
      // Served, not cut: refused only because its decoded value is over the environment limit.
      expect.stringMatching(/^SETENV LONG: a value of 484275 bytes is too long/),
      'request line is longer than 524288 bytes',
      'request line is longer than 524288 bytes',
      'OK',
      'OK',
    ]);
    expect(r.stdout).toBe(`${128 * 1024 - 'ENC='.length - 1} unset 1\n`);
  });

  test('several requests in one write are each answered, in order', async () => {
    const r = await runHelper({
      script: [{ sendRaw: 'SETENV A 1\nBOGUS\nSETENV B 2\n', replies: 3 }, { send: 'DONE' }],
      runtime: [PYTHON, PROBE, 'A', 'B'],
    });
    expect(r.code).toBe(0);
    expect(r.replies).toEqual(['OK', 'ERR unknown%20request%20"BOGUS"', 'OK', 'OK']);
    expect(probe(r).env).toEqual({ A: '1', B: '2' });
  });

  test('an unfinished last line is ignored', async () => {
    const r = await runHelper({
      script: [{ send: 'DONE' }, { sendPartial: 'SETENV PART 1' }],
      runtime: [PYTHON, PROBE, 'PART'],
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(probe(r).env).toEqual({ PART: null });
  });
});

describe('SNAPLOADER_DEBUG', () => {
  const script: Step[] = [{ send: 'MEMFD 1 x' }, { send: 'SETENV X 1' }, { send: 'DONE' }];

  test('1: "snaploader-helper: " lines for each request and the exec', async () => {
    const r = await runHelper({ env: { SNAPLOADER_DEBUG: '1' }, script, runtime: ['/bin/sh', '-c', 'echo ran'] });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('ran\n');
    const lines = r.stderr.split('\n').filter(Boolean);
    for (const l of lines) expect(l).toMatch(/^snaploader-helper: /);
    expect(lines).toEqual(
      expect.arrayContaining([
        'snaploader-helper: request: MEMFD 1 x',
        'snaploader-helper: request: SETENV X 1',
        'snaploader-helper: request: DONE',
        'snaploader-helper: exec /bin/sh -c echo ran',
      ]),
    );
  });

  test.each([undefined, '', ' ', '0', 'false', 'OFF', ' No\n'])('%j: no debug output', async (value) => {
    const env: Record<string, string> = value === undefined ? {} : { SNAPLOADER_DEBUG: value };
    const r = await runHelper({ env, script, runtime: ['/bin/sh', '-c', 'echo ran'] });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('ran\n');
    expect(r.stderr).toBe('');
  });
});

/**
 * A process signalled before the helper exited: gone, or at most a zombie waiting for its new
 * parent, once the kernel has delivered the signal (polled for up to 5 s); else its state letter.
 */
async function endState(pid: number): Promise<string> {
  let state = '';
  for (let i = 0; i < 50; i++) {
    state = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0] : 'gone';
    if (state === 'gone' || state === 'Z') break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return state;
}

describe('the init program has SNAPLOADER_TIMEOUT seconds', () => {
  const RUNTIME = ['/bin/sh', '-c', 'echo RUNTIME RAN'];
  const timedOut = (n: number) =>
    `snaploader: init program did not finish within ${n} s (SNAPLOADER_TIMEOUT=${n}): ` +
    'check the network to S3 and the archive size, or raise SNAPLOADER_TIMEOUT\n';

  test('an init program that hangs gets SIGTERM and the failure message', async () => {
    const r = await runHelper({
      env: { SNAPLOADER_TIMEOUT: '1' },
      runtime: RUNTIME,
      script: [{ send: 'MEMFD 5 x' }, { send: 'SETENV X 1' }, { sleep: 1e9 }],
    });
    expect(r.stderr).toBe(timedOut(1));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.replies).toEqual([expect.stringMatching(/^OK \d+$/), 'OK']);
  });

  test('one that ignores SIGTERM gets SIGKILL', async () => {
    const r = await runHelper({
      env: { SNAPLOADER_TIMEOUT: '1', SNAPLOADER_DEBUG: '1' },
      runtime: RUNTIME,
      script: [{ ignore: 'SIGTERM' }, { sleep: 1e9 }],
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n');
    expect(lines).toContainEqual(expect.stringMatching(/^snaploader-helper: init program \(pid \d+\) still running after 1 s: sending SIGTERM$/));
    expect(lines).toContainEqual(expect.stringMatching(/still running 1000 ms after SIGTERM: sending SIGKILL$/));
    expect(lines).toContain('snaploader-helper: init program was killed by signal 9 (no DONE)');
    expect(r.stderr.endsWith(timedOut(1))).toBe(true);
  });

  test('one that closes the socket and keeps running is stopped at the deadline too', async () => {
    const r = await runHelper({
      env: { SNAPLOADER_TIMEOUT: '1' },
      init: ['/bin/sh', '-c', 'eval "exec $SNAPLOADER_CONTROL_FD>&-"; exec sleep 30'],
      runtime: RUNTIME,
    });
    expect(r.stderr).toBe(timedOut(1));
    expect(r.code).toBe(1);
  });

  /** Times out an init program that leaves `grandchild` (a shell command writing its PID) running; returns how that process ended. */
  async function grandchildAfterTimeout(grandchild: string): Promise<{ stderr: string; end: string }> {
    const pidFile = join(tmp, 'grandchild.pid');
    const r = await runHelper({
      env: { SNAPLOADER_TIMEOUT: '1' },
      init: ['/bin/sh', '-c', `${grandchild} & echo $! > ${pidFile}; wait`],
      runtime: RUNTIME,
    });
    const pid = Number(readFileSync(pidFile, 'utf8'));
    try {
      return { stderr: r.stderr, end: await endState(pid) };
    } finally {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  test('what the init program started is stopped with it: the whole process group is signalled', async () => {
    const o = await grandchildAfterTimeout('sleep 60 >/dev/null 2>&1');
    expect(o.stderr).toBe(timedOut(1));
    expect(o.end).toMatch(/^(gone|Z)$/);
  });

  test('a grandchild that ignores SIGTERM is killed with the group once the grace period is over', async () => {
    const o = await grandchildAfterTimeout('(trap "" TERM; exec sleep 60 >/dev/null 2>&1)');
    expect(o.stderr).toBe(timedOut(1));
    expect(o.end).toMatch(/^(gone|Z)$/);
  });

  test('SNAPLOADER_ON_ERROR=continue: the usual warning, and the runtime starts untouched', async () => {
    const r = await runHelper({
      env: { SNAPLOADER_TIMEOUT: '1', SNAPLOADER_ON_ERROR: 'continue' },
      runtime: [PYTHON, PROBE, 'X'],
      script: [{ send: 'MEMFD 5 x' }, { send: 'SETENV X 1' }, { sleep: 1e9 }],
    });
    expect(r.stderr).toBe(
      `snaploader: warning: ${timedOut(1).slice('snaploader: '.length, -1)}; starting the runtime without the archive (SNAPLOADER_ON_ERROR=continue)\n`,
    );
    expect(r.code).toBe(0);
    const p = probe(r);
    expect(p.pid).toBe(r.pid);
    expect(p.memfds).toEqual([]);
    expect(p.env).toEqual({ X: null });
  });

  test('an init program that finishes in time is not affected', async () => {
    const r = await runHelper({
      env: { SNAPLOADER_TIMEOUT: '5' },
      runtime: [PYTHON, PROBE, 'X'],
      script: [{ sleep: 1500 }, { send: 'SETENV X 1' }, { send: 'DONE' }],
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(probe(r).env).toEqual({ X: '1' });
  });

  test('a child that exits while a grandchild holds the socket does not keep the helper waiting', async () => {
    // The deadline is far beyond the test's 20 s hang guard: only noticing the exit ends the wait.
    const r = await runHelper({
      env: { SNAPLOADER_TIMEOUT: '600' },
      runtime: [PYTHON, PROBE, 'X'],
      script: [{ send: 'SETENV X 1' }, { holdSocket: 40000 }, { send: 'DONE' }],
    });
    const holder = r.log.find((e) => e.holder !== undefined)?.holder;
    try {
      expect(holder).toEqual(expect.any(Number));
      expect(r.signal).toBeNull();
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(probe(r).env).toEqual({ X: '1' });
    } finally {
      if (holder) {
        try {
          process.kill(holder, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
  });

  test('...and one that exits without DONE is reported at once, not at the deadline', async () => {
    const r = await runHelper({
      env: { SNAPLOADER_TIMEOUT: '600' },
      runtime: RUNTIME,
      script: [{ holdSocket: 40000 }, { exit: 4 }],
    });
    const holder = r.log.find((e) => e.holder !== undefined)?.holder;
    if (holder) process.kill(holder, 'SIGKILL');
    expect(r.signal).toBeNull();
    expect(r.stderr).toBe('snaploader: init program exited with status 4 before finishing\n');
    expect(r.code).toBe(1);
  });

  test.each([
    [undefined, undefined, 9],
    [undefined, '', 9],
    [undefined, 'on-demand', 9],
    [undefined, 'snap-start', 600],
    [undefined, 'provisioned-concurrency', 600],
    [undefined, 'something-new', 600],
    ['', 'snap-start', 600],
    ['30', undefined, 30],
    ['0042', 'snap-start', 42],
    ['3600', undefined, 3600],
    ['1', 'provisioned-concurrency', 1],
  ])('SNAPLOADER_TIMEOUT=%j, AWS_LAMBDA_INITIALIZATION_TYPE=%j: %d s', async (timeout, type, seconds) => {
    const env: Record<string, string> = { SNAPLOADER_DEBUG: '1' };
    if (timeout !== undefined) env.SNAPLOADER_TIMEOUT = timeout;
    if (type !== undefined) env.AWS_LAMBDA_INITIALIZATION_TYPE = type;
    const r = await runHelper({ env, runtime: ['/bin/sh', '-c', 'echo ran'] });
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n')).toContain(`snaploader-helper: init timeout ${seconds} s`);
  });

  test.each(['snap-start', 'provisioned-concurrency'])(
    'SNAPLOADER_TIMEOUT wins over the default for %s',
    async (type) => {
      const r = await runHelper({
        env: { SNAPLOADER_TIMEOUT: '1', AWS_LAMBDA_INITIALIZATION_TYPE: type },
        runtime: RUNTIME,
        script: [{ sleep: 3000 }, { send: 'DONE' }],
      });
      expect(r.stderr).toBe(timedOut(1));
      expect(r.code).toBe(1);
    },
  );

  test.each(['0', '3601', '-1', '+5', '1.5', '5 5', '5s', 'abc', '99999999999999999999999', '\u00e9'])(
    'invalid SNAPLOADER_TIMEOUT=%j: a message naming the variable, exit 1, the init program never runs',
    async (value) => {
      const r = await runHelper({ env: { SNAPLOADER_TIMEOUT: value }, runtime: RUNTIME });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^snaploader: SNAPLOADER_TIMEOUT="[^\n]*" is not valid: give the whole seconds the init program may run, from 1 to 3600 \(digits only\)\n$/);
      expect(r.log).toEqual([]);
    },
  );

  test('invalid SNAPLOADER_TIMEOUT with SNAPLOADER_ON_ERROR=continue: warning, runtime untouched', async () => {
    const r = await runHelper({ env: { SNAPLOADER_TIMEOUT: 'soon', SNAPLOADER_ON_ERROR: 'continue' }, runtime: RUNTIME });
    expect(r.stderr).toBe(
      'snaploader: warning: SNAPLOADER_TIMEOUT="soon" is not valid: give the whole seconds the init program may run, ' +
        'from 1 to 3600 (digits only); starting the runtime without the archive (SNAPLOADER_ON_ERROR=continue)\n',
    );
    expect(r.stdout).toBe('RUNTIME RAN\n');
    expect(r.code).toBe(0);
    expect(r.log).toEqual([]);
  });
});
