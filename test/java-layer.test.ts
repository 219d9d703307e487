/**
 * The parts of the layer that Java functions need, each on its own, outside the sandbox (the
 * end-to-end suites, e2e-java*.test.ts, run them together): the agent jar as build.mjs leaves
 * it, how wrapper.sh hands it to a JVM, the agent in a real JVM against hand-made trees and
 * mapping files, and the preload library's stat family, which Java's System.load goes through
 * before its dlopen.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeMappingFile, RecordKind } from '../src/mapping-file';
import { scratch } from './support/function';
import { JAVA_FIXTURES } from './support/java-function';
import { OPT, PRELOAD, requireBuilt } from './support/paths';
import { baseEnv, run as runWrapper } from './support/run';
import { zigCc } from './support/zig';

const AGENT = join(OPT, 'snaploader', 'java', 'snaploader-agent.jar');
let work: ReturnType<typeof scratch>;
let mainClasses: string;

beforeAll(() => {
  requireBuilt();
  work = scratch('java-layer');
  mainClasses = join(work.dir, 'main');
  execFileSync('javac', ['--release', '11', '-d', mainClasses, join(JAVA_FIXTURES, 'agent', 'Main.java')]);
}, 120000);

afterAll(() => work?.cleanup());

/** A tree at <dir>/tree with `files` (entry name -> content) and its mapping file, base path /nonexistent-task. */
function tree(dir: string, files: Record<string, string | Buffer>): { map: string; tree: string } {
  const root = join(dir, 'tree');
  mkdirSync(join(root, '.snaploader'), { recursive: true });
  const records = Object.entries(files).map(([name, content]) => {
    mkdirSync(join(root, name, '..'), { recursive: true });
    writeFileSync(join(root, name), content);
    return { kind: RecordKind.Path, key: Buffer.from(`/nonexistent-task/${name}`), value: Buffer.from(join(root, name)) };
  });
  const map = join(root, '.snaploader', 'map');
  writeFileSync(map, encodeMappingFile(records));
  return { map, tree: root };
}

function jvm(env: Record<string, string>, jvmArgs: string[] = [], args: string[] = []) {
  const r = spawnSync('java', [`-javaagent:${AGENT}`, ...jvmArgs, '-cp', mainClasses, 'Main', ...args], {
    encoding: 'utf8', env: { PATH: process.env.PATH!, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('wrapper.sh and a JVM', () => {
  // The init program fails fast (connection refused) and the helper starts the runtime untouched.
  const UNREACHABLE = {
    SNAPLOADER_SOURCE: 's3://bucket/key.zip', SNAPLOADER_ON_ERROR: 'continue', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9',
    AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y',
  };
  let fakeJava: string;

  beforeAll(() => {
    // A "runtime" named java that shows the options it was given.
    fakeJava = join(work.dir, 'lang', 'bin', 'java');
    mkdirSync(join(fakeJava, '..'), { recursive: true });
    writeFileSync(fakeJava, '#!/bin/sh\necho "JAVA_TOOL_OPTIONS=${JAVA_TOOL_OPTIONS-unset}"\n');
    chmodSync(fakeJava, 0o755);
  });

  test('a runtime named java gets the agent first in JAVA_TOOL_OPTIONS, the user\'s options after it', async () => {
    const r = await runWrapper([fakeJava, '-cp', 'x', 'Main'], baseEnv({ ...UNREACHABLE, JAVA_TOOL_OPTIONS: '-Xss2m -Dx=y' }));
    expect(r.stdout).toBe(`JAVA_TOOL_OPTIONS=-javaagent:${AGENT} -Xss2m -Dx=y\n`);
    const alone = await runWrapper([fakeJava], baseEnv(UNREACHABLE));
    expect(alone.stdout).toBe(`JAVA_TOOL_OPTIONS=-javaagent:${AGENT}\n`);
  });

  test('options that already load the agent are left as they are', async () => {
    const r = await runWrapper([fakeJava], baseEnv({ ...UNREACHABLE, JAVA_TOOL_OPTIONS: `-Dx=y -javaagent:${AGENT}` }));
    expect(r.stdout).toBe(`JAVA_TOOL_OPTIONS=-Dx=y -javaagent:${AGENT}\n`);
  });

  test('another runtime, or no archive configured, gets no agent', async () => {
    const sh = ['/bin/sh', '-c', 'echo "JAVA_TOOL_OPTIONS=${JAVA_TOOL_OPTIONS-unset}"'];
    expect((await runWrapper(sh, baseEnv(UNREACHABLE))).stdout).toBe('JAVA_TOOL_OPTIONS=unset\n');
    expect((await runWrapper([fakeJava], baseEnv())).stdout).toBe('JAVA_TOOL_OPTIONS=unset\n');
  });
});

describe('the agent jar in the layer', () => {
  test('names its premain class and holds Java 11 bytecode only (class file version 55)', () => {
    const manifest = execFileSync('unzip', ['-p', AGENT, 'META-INF/MANIFEST.MF'], { encoding: 'utf8' });
    expect(manifest).toMatch(/^Premain-Class: snaploader\.agent\.Agent\r?$/m);
    const classes = execFileSync('unzip', ['-Z1', AGENT], { encoding: 'utf8' }).split('\n').filter((f) => f.endsWith('.class'));
    expect(classes.length).toBeGreaterThan(0);
    for (const c of classes) {
      const head = execFileSync('unzip', ['-p', AGENT, c]).subarray(0, 8);
      expect({ c, major: head.readUInt16BE(6) }).toEqual({ c, major: 55 });
    }
  });
});

describe('the agent in a JVM', () => {
  test('does nothing without SNAPLOADER_MAP', () => {
    const r = jvm({});
    expect(r).toMatchObject({ status: 0, stdout: 'main ran; cacheLibraries=null\n', stderr: '' });
  });

  test('a mapping file it cannot read is one line, and the program still runs', () => {
    const dir = join(work.dir, 'bad-map');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'map'), 'not a map');
    const r = jvm({ SNAPLOADER_MAP: join(dir, 'map') });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe(`snaploader: cannot read the mapping file ${join(dir, 'map')} (${join(dir, 'map')} is not a snaploader mapping file): the archive's jars are not on the class path\n`);
  });

  test('with SNAPLOADER_ON_ERROR=continue a jar that is not a zip is a warning, and the other jars still load', () => {
    const jarDir = join(work.dir, 'jar-src');
    mkdirSync(jarDir, { recursive: true });
    execFileSync('javac', ['--release', '11', '-d', jarDir, join(JAVA_FIXTURES, 'archived', 'example', 'archived', 'Greeter.java')]);
    const good = join(work.dir, 'greeter.jar');
    execFileSync('jar', ['--create', '--file', good, '-C', jarDir, '.']);
    const t = tree(join(work.dir, 'continue'), { 'lib/a-broken.jar': 'not a zip', 'lib/greeter.jar': readFileSync(good) });
    const r = jvm({ SNAPLOADER_MAP: t.map, SNAPLOADER_ON_ERROR: ' Continue ' }, [], ['example.archived.Greeter']);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^snaploader: warning: JAR_INVALID: \/nonexistent-task\/lib\/a-broken\.jar \(archive entry lib\/a-broken\.jar\) is not a jar the JVM can open: .*; starting without it \(SNAPLOADER_ON_ERROR=continue\)\n$/);
    expect(r.stdout).toContain(`class example.archived.Greeter from file:${t.tree}/lib/greeter.jar\n`);
  });

  test('without SNAPLOADER_ON_ERROR a jar that is not a zip stops the JVM before its main class, naming the jar', () => {
    const t = tree(join(work.dir, 'fail'), { 'lib/broken.jar': 'not a zip' });
    const r = jvm({ SNAPLOADER_MAP: t.map });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^snaploader: JAR_INVALID: \/nonexistent-task\/lib\/broken\.jar \(archive entry lib\/broken\.jar\) is not a jar the JVM can open: /);
  });

  test('a java.library.path set without the tree\'s library directories is named, with the fix', () => {
    const t = tree(join(work.dir, 'libpath'), { 'native/libx.so': 'not elf' });
    const r = jvm({ SNAPLOADER_MAP: t.map, LD_LIBRARY_PATH: `${t.tree}/native:/usr/lib` }, ['-Djava.library.path=/usr/lib']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe(`snaploader: warning: java.library.path was set without the archive's library directories ${t.tree}/native: ` +
      'System.loadLibrary will not find them there; leave -Djava.library.path out (HotSpot builds it from LD_LIBRARY_PATH, which snaploader sets) ' +
      'or append these directories to it\n');
    // Without the option, HotSpot takes LD_LIBRARY_PATH and nothing is said.
    expect(jvm({ SNAPLOADER_MAP: t.map, LD_LIBRARY_PATH: `${t.tree}/native:/usr/lib` }).stderr).toBe('');
  });

  test('JavaCPP natives in the archive turn off JavaCPP\'s library cache, unless the user set it', () => {
    const t = tree(join(work.dir, 'javacpp'), { 'x-linux-x86_64.jar/org/bytedeco/x/linux-x86_64/libjnix.so': 'not elf' });
    expect(jvm({ SNAPLOADER_MAP: t.map }).stdout).toBe('main ran; cacheLibraries=false\n');
    expect(jvm({ SNAPLOADER_MAP: t.map }, ['-Dorg.bytedeco.javacpp.cacheLibraries=true']).stdout).toBe('main ran; cacheLibraries=true\n');
    const plain = tree(join(work.dir, 'plain'), { 'native/libx.so': 'not elf' });
    expect(jvm({ SNAPLOADER_MAP: plain.map }).stdout).toBe('main ran; cacheLibraries=null\n');
  });
});

describe('the preload library\'s stat family on a mapped path', () => {
  let probe: string;
  let t: { map: string; tree: string };

  beforeAll(() => {
    probe = zigCc(join(work.dir, 'stat_probe'), [join(JAVA_FIXTURES, 'stat_probe.c'), '-ldl']);
    t = tree(join(work.dir, 'stat'), { 'lib/data.txt': 'twelve bytes' });
    symlinkSync(join(t.tree, 'lib', 'data.txt'), join(t.tree, 'lib', 'link.txt'));
    writeFileSync(t.map, encodeMappingFile([
      { kind: RecordKind.Path, key: Buffer.from('/nonexistent-task/lib/data.txt'), value: Buffer.from(join(t.tree, 'lib', 'data.txt')) },
      { kind: RecordKind.Path, key: Buffer.from('/nonexistent-task/lib/link.txt'), value: Buffer.from(join(t.tree, 'lib', 'link.txt')) },
    ]));
  });

  function run(fn: string, path: string, preload = true): string {
    const r = spawnSync(probe, [fn, path], { encoding: 'utf8', env: { ...(preload ? { LD_PRELOAD: PRELOAD } : {}), SNAPLOADER_MAP: t.map } });
    return r.stdout.trim();
  }

  test.each(['stat', 'stat64', '__xstat', '__xstat64'])('%s of the original path sees the tree file, through a tree symlink too', (fn) => {
    expect(run(fn, '/nonexistent-task/lib/data.txt')).toBe('ok 12');
    expect(run(fn, '/nonexistent-task/lib/../lib/link.txt')).toBe('ok 12');
  });

  test('access of the original path answers for the tree file', () => {
    expect(run('access', '/nonexistent-task/lib/data.txt')).toBe('ok 0');
  });

  test.each(['stat', 'stat64', 'access'])('%s of an unmapped missing path fails with ENOENT, as without the library', (fn) => {
    expect(run(fn, '/nonexistent-task/lib/other.txt')).toBe('errno 2');
    expect(run(fn, '/nonexistent-task/lib/other.txt', false)).toBe('errno 2');
  });

  test('without the library the original path does not exist (so the cases above test the hooks)', () => {
    expect(run('stat', '/nonexistent-task/lib/data.txt', false)).toBe('errno 2');
  });
});
