/**
 * POSIX shared memory and named semaphores without /dev/shm (preload-c/shm.c, wrapper.sh).
 *
 * "No /dev/shm" is a private mount namespace (`unshare -m`) with an empty read-only tmpfs
 * mounted over /dev/shm (or /dev/null bound there, or a tmpfs this user may not write to).
 * The C probe (test/fixtures/shm/shmprobe.c) prints lines that do not depend on where the
 * objects live, so a run against glibc and a real /dev/shm is compared line by line with a
 * run through the library without /dev/shm; the same run without the library is the control.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRELOAD, requireBuilt, ROOT, WRAPPER } from './support/paths';
import { zigCc } from './support/zig';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'shm');
const PYTHON = '/usr/bin/python3';
const NOBODY = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'];
const NOBODY_UID = 65534;
/** A library the user preloads: any real one. */
const USER_LIB = '/usr/lib/x86_64-linux-gnu/libm.so.6';

type DevShm = 'real' | 'read-only' | 'missing' | 'not-writable';
const MOUNTS: Record<Exclude<DevShm, 'real'>, string> = {
  'read-only': 'mount -t tmpfs -o ro,size=4k none /dev/shm',
  // A /dev of its own with only the devices a process needs, and no shm in it.
  missing: 'd=$(mktemp -d) && mount -t tmpfs none "$d" && for n in null zero random urandom; do touch "$d/$n" && mount --bind "/dev/$n" "$d/$n" || exit 1; done && mount --rbind "$d" /dev',
  'not-writable': 'mount -t tmpfs -o size=4k,mode=0755 none /dev/shm',
};

interface RunOptions {
  devShm?: DevShm;
  preload?: boolean;
  asNobody?: boolean;
  env?: Record<string, string>;
  /** A shell line run just before the command, inside the namespace (e.g. `umask 077`). */
  before?: string;
  timeoutMs?: number;
}

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

let work: string;
let probe: string;
/** Where the redirected objects go in a test: a fresh path straight under /tmp, so that any user can reach it. */
let shmDir: string;

beforeAll(() => {
  requireBuilt();
  work = mkdtempSync(join(tmpdir(), 'snaploader-shm-'));
  chmodSync(work, 0o755);
  probe = zigCc(join(work, 'shmprobe'), [join(FIXTURES, 'shmprobe.c'), '-lpthread']);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

let counter = 0;
beforeEach(() => {
  shmDir = join('/tmp', `snaploader-shm-test-${process.pid}-${++counter}`);
});
afterEach(() => rmSync(shmDir, { recursive: true, force: true }));

/** A tag for object names, unique per run, so runs against the real /dev/shm never meet. */
function tag(): string {
  return `t${process.pid.toString(36)}${(++counter).toString(36)}`;
}

function run(argv: string[], opts: RunOptions = {}): Result {
  const env: Record<string, string> = { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', SNAPLOADER_SHM_DIR: shmDir, ...opts.env };
  if (opts.preload ?? true) env.LD_PRELOAD = PRELOAD;
  const user = opts.asNobody ? `${NOBODY.join(' ')} ` : '';
  const devShm = opts.devShm ?? 'read-only';
  const setup = [devShm === 'real' ? 'true' : MOUNTS[devShm], opts.before ?? 'true'].join(' && ');
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', '--', '/bin/sh', '-c', `${setup} && exec ${user}"$@"`, 'sh', ...argv], {
    env, encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: Result): string {
  if (r.status !== 0) throw new Error(`exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** What the directory holds, or null if it does not exist. */
function listing(dir = shmDir): string[] | null {
  return existsSync(dir) ? readdirSync(dir).sort() : null;
}

describe('the same answers as glibc with a real /dev/shm', () => {
  test.each([['root', false], ['an unprivileged user', true]] as const)('every edge case, as %s: return values, errno, modes, one sem_t * per name', (_who, asNobody) => {
    const t = tag();
    const real = ok(run([probe, 'cases', t, '/dev/shm'], { devShm: 'real', preload: false, asNobody }));
    const redirected = ok(run([probe, 'cases', t, shmDir], { asNobody }));
    expect(redirected).toBe(real);
    expect(real).toContain('shm name of 256 bytes fail errno=36\n'); // the probe did reach the edge cases
    expect(real).toContain('sem open the same name ok errno=77 value=3 same=1\n');
    // The control: the same code without the library fails where /dev/shm is unusable (and
    // the probe then crashes on the semaphores it could not open).
    const control = run([probe, 'cases', t, shmDir], { preload: false, asNobody }).stdout;
    expect(control).toContain('shm create fail errno=30\n');
    expect(control).toContain('sem create with value 3 fail errno=30\n');
    expect(listing()).toEqual([]); // nothing left behind, not even temporary files
  });

  test.each(['sem', 'shm'])('of 16 processes creating one %s with O_CREAT|O_EXCL at once, exactly one succeeds', (kind) => {
    const name = `/${tag()}`;
    const real = ok(run([probe, 'race', kind, name, '16'], { devShm: 'real', preload: false }));
    expect(real).toBe('created=1 eexist=15 other=0\n');
    expect(ok(run([probe, 'race', kind, name, '16']))).toBe(real);
    expect(ok(run([probe, 'race', kind, name, '16'], { preload: false }))).toBe('created=0 eexist=0 other=16\n');
  });

  test('16 processes opening one semaphore with O_CREAT at once share one initial value', () => {
    const name = tag();
    expect(ok(run([probe, 'initrace', name, '16'], { devShm: 'real', preload: false }))).toBe('taken=5 failed=0\n');
    expect(ok(run([probe, 'initrace', name, '16']))).toBe('taken=5 failed=0\n');
  });

  test('64 processes contending on one named semaphore as a lock count correctly', () => {
    const name = tag();
    const out = ok(run([probe, 'stress', name, '64', '500'], { timeoutMs: 120_000 }));
    expect(out).toBe('count=32000 expected=32000 value=1 failed=0\n');
    expect(listing()).toEqual([]);
  });

  test('children made by fork, fork+exec, vfork+exec and posix_spawn reach the objects by name', () => {
    const t = tag();
    const expected = 'fork ok\nfork+exec ok\nvfork+exec ok\nposix_spawn ok\n';
    expect(ok(run([probe, 'children', t], { devShm: 'real', preload: false }))).toBe(expected);
    expect(ok(run([probe, 'children', t], { asNobody: true }))).toBe(expected);
  });

  test('a symlink planted under an object name is never followed', () => {
    const t = tag();
    const real = ok(run([probe, 'planted', t, '/dev/shm'], { devShm: 'real', preload: false }));
    expect(real).toContain('target still holds: precious\n');
    expect(real).toContain('shm O_CREAT|O_TRUNC over a planted symlink fail errno=40\n');
    // The directory exists once something was made in it; the probe plants its links there.
    ok(run([probe, 'race', 'sem', `${t}-first`, '1']));
    expect(ok(run([probe, 'planted', t, shmDir]))).toBe(real);
  });
});

describe('which processes redirect', () => {
  test.each(['read-only', 'missing', 'not-writable'] as const)('a %s /dev/shm sends the objects to SNAPLOADER_SHM_DIR', (devShm) => {
    const r = run([probe, 'children', tag()], { devShm, asNobody: true, env: { SNAPLOADER_DEBUG: '1' } });
    expect(ok(r)).toBe('fork ok\nfork+exec ok\nvfork+exec ok\nposix_spawn ok\n');
    expect(r.stderr).toContain(`snaploader-preload: shm: /dev/shm is not usable: POSIX shared memory in ${shmDir}\n`);
    expect(statSync(shmDir).uid).toBe(NOBODY_UID);
  });

  test('where /dev/shm works every call goes to glibc: the objects are in /dev/shm and the directory is never made', () => {
    const t = tag();
    const real = ok(run([probe, 'cases', t, '/dev/shm'], { devShm: 'real', preload: false }));
    const r = run([probe, 'cases', t, '/dev/shm'], { devShm: 'real', env: { SNAPLOADER_DEBUG: '1' } });
    expect(ok(r)).toBe(real);
    expect(r.stderr).toContain('snaploader-preload: shm: /dev/shm works: glibc handles POSIX shared memory\n');
    expect(listing()).toBeNull();
    expect(readdirSync('/dev/shm').filter((f) => f.includes(t))).toEqual([]);
  });

  test.each(['off', 'OFF', '0', 'False', 'no'])('SNAPLOADER_SHM=%s leaves glibc to fail as it does without the library', (value) => {
    const out = ok(run([probe, 'race', 'sem', tag(), '2'], { env: { SNAPLOADER_SHM: value } }));
    expect(out).toBe('created=0 eexist=0 other=2\n');
    expect(listing()).toBeNull();
  });
});

describe('the directory', () => {
  test('is made with mode 01777 whatever the umask, owned by the user that needed it', () => {
    ok(run([probe, 'race', 'sem', tag(), '1'], { before: 'umask 077', asNobody: true }));
    const st = statSync(shmDir);
    expect(st.mode & 0o7777).toBe(0o1777);
    expect(st.uid).toBe(NOBODY_UID);
  });

  test('a symlink in its place is refused, and nothing is made where it points', () => {
    const elsewhere = mkdtempSync(join(work, 'elsewhere-'));
    symlinkSync(elsewhere, shmDir);
    const r = run([probe, 'race', 'sem', tag(), '1']);
    expect(ok(r)).toBe('created=0 eexist=0 other=1\n');
    expect(r.stderr).toContain(`snaploader-preload: shm: refusing ${shmDir}: it is not a directory (a symlink or a file)`);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  test("one owned by another user is refused, even sticky; one of root's that others may write needs the sticky bit", () => {
    mkdirSync(shmDir);
    chownSync(shmDir, NOBODY_UID, NOBODY_UID);
    chmodSync(shmDir, 0o1777);
    let r = run([probe, 'race', 'sem', tag(), '1']);
    expect(ok(r)).toBe('created=0 eexist=0 other=1\n');
    expect(r.stderr).toContain('it is owned by another user');
    chownSync(shmDir, 0, 0);
    chmodSync(shmDir, 0o777);
    r = run([probe, 'race', 'sem', tag(), '1'], { asNobody: true });
    expect(ok(r)).toBe('created=0 eexist=0 other=1\n');
    expect(r.stderr).toContain('others may write to it and it is not sticky');
    chmodSync(shmDir, 0o1777);
    expect(ok(run([probe, 'race', 'sem', tag(), '1'], { asNobody: true }))).toBe('created=1 eexist=0 other=0\n');
  });
});

describe('leftovers', () => {
  function plantLeftovers(): void {
    mkdirSync(shmDir, { mode: 0o1777 });
    chmodSync(shmDir, 0o1777);
    for (const f of ['sem.mp-dead', 'psm_dead', '.snaploader-tmp-1']) writeFileSync(join(shmDir, f), 'x');
    writeFileSync(join(shmDir, 'someone-elses'), 'x');
    chownSync(join(shmDir, 'someone-elses'), NOBODY_UID, NOBODY_UID);
  }

  test("the runtime's own process removes this user's files at its start, and takes the marker out of its environment", () => {
    plantLeftovers();
    const r = run(['/bin/sh', '-c', 'SNAPLOADER_SHM_SWEEP=$$ exec /usr/bin/env'], { devShm: 'real' });
    expect(listing()).toEqual(['someone-elses']);
    expect(ok(r)).not.toContain('SNAPLOADER_SHM_SWEEP');
  });

  test('any other process leaves them alone (the marker names another PID)', () => {
    plantLeftovers();
    ok(run(['/bin/sh', '-c', 'SNAPLOADER_SHM_SWEEP=1 exec /usr/bin/env']));
    expect(listing()).toEqual(['.snaploader-tmp-1', 'psm_dead', 'sem.mp-dead', 'someone-elses']);
  });

  test('with SNAPLOADER_SHM=off nothing is removed', () => {
    plantLeftovers();
    ok(run(['/bin/sh', '-c', 'SNAPLOADER_SHM_SWEEP=$$ exec /usr/bin/env'], { env: { SNAPLOADER_SHM: 'off' } }));
    expect(listing()).toHaveLength(4);
  });
});

describe('wrapper.sh with no archive', () => {
  const plainEnv = (extra: Record<string, string> = {}) => ({ PATH: '/usr/bin:/bin', HOME: '/tmp', SNAPLOADER_SHM_DIR: shmDir, ...extra });

  function wrapper(argv: string[], env: Record<string, string>): Result & { pid: number } {
    const r = spawnSync(WRAPPER, argv, { env, encoding: 'utf8', timeout: 60_000 });
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, pid: r.pid };
  }

  test("adds only the preload library (the user's LD_PRELOAD kept) and execs the runtime: same PID, no helper, no Node", () => {
    const marker = join(work, 'node-ran');
    const node = join(work, 'node');
    writeFileSync(node, `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
    const env = plainEnv({ LD_PRELOAD: USER_LIB, SNAPLOADER_NODE: node });
    const r = wrapper(['/bin/sh', '-c', 'echo "pid=$$"; exec /usr/bin/env'], env);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`pid=${r.pid}`);
    const got = Object.fromEntries(lines.slice(1).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const { PWD: _pwd, SHLVL: _shlvl, ...rest } = got;
    expect(rest).toEqual({ ...env, LD_PRELOAD: `${PRELOAD}:${USER_LIB}` });
    expect(existsSync(marker)).toBe(false);
    expect(r.stderr).toBe(''); // ld.so found the library (it complains on stderr otherwise)
  });

  test.each(['off', 'Off', '0', 'false', 'NO'])('SNAPLOADER_SHM=%s execs the runtime unchanged', (value) => {
    const r = wrapper(['/bin/sh', '-c', 'echo "LD_PRELOAD=${LD_PRELOAD-unset} sweep=${SNAPLOADER_SHM_SWEEP-unset}"'], plainEnv({ SNAPLOADER_SHM: value }));
    expect(r.stdout).toBe('LD_PRELOAD=unset sweep=unset\n');
  });

  test('a SNAPLOADER_SHM that is not a boolean is named, and the runtime does not start', () => {
    const r = wrapper(['/bin/echo', 'started'], plainEnv({ SNAPLOADER_SHM: 'maybe' }));
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('snaploader: SNAPLOADER_SHM="maybe" is not valid: use 1, true, yes, on, 0, false, no or off\n');
    expect(r.stdout).toBe('');
  });
});

describe('Python multiprocessing without /dev/shm, as an unprivileged user', () => {
  const PARTS = ['queue_round_trip', 'lock_counts', 'pool_map', 'manager_dict', 'shared_memory_with_child', 'process_pool_executor'];
  // Manager() serves its objects over a socket from a server process: no /dev/shm involved.
  const WORKS_WITHOUT_SHM = new Set(['manager_dict']);
  const check = (method: string) => [PYTHON, join(FIXTURES, 'mp_check.py'), method];

  test.each(['fork', 'spawn', 'forkserver'])('start method %s: every part works through the wrapper; without the library all but Manager fail', (method) => {
    const r = run([WRAPPER, ...check(method)], { preload: false, asNobody: true, timeoutMs: 120_000 });
    expect(ok(r)).toBe(PARTS.map((p) => `${p} ok\n`).join(''));
    expect(listing()).toEqual([]);
    const control = ok(run(check(method), { preload: false, asNobody: true, timeoutMs: 120_000 })).trim().split('\n');
    expect(control.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(PARTS.map((p) => `${p} ${WORKS_WITHOUT_SHM.has(p) ? 'ok' : 'fail'}`));
  });
});
