/**
 * The Java test functions (test/fixtures/java/), built the way their users build them: the
 * handler's classes and the Java jars of JavaCPP and its OpenBLAS preset in the deployment
 * package (/var/task, /var/task/lib), and everything native, plus a jar, in the archive that
 * snaploader loads. The archive's JavaCPP part is JavaCPP's own cache: the preset is loaded once
 * on this machine with its platform jars (from Maven Central), which extracts the natives and
 * their version symlinks into org.bytedeco.javacpp.cachedir, and that directory is zipped with
 * `zip -r -y`, as the README tells users to.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './paths';
import { mavenJars } from '../../src/dev/runtimes/java';
import { zigCc } from './zig';

export const JAVA_FIXTURES = join(ROOT, 'test', 'fixtures', 'java');
const JDK_INCLUDE = '/usr/lib/jvm/java-17-openjdk-amd64/include';
const MiB = 1024 * 1024;

function run(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** The test functions' Maven dependencies (pinned by SHA-256), by file name. */
export function javaDependencies(): Record<string, string> {
  const lib = join(mavenJars('java-function-deps', join(JAVA_FIXTURES, 'pom.xml'), join(JAVA_FIXTURES, 'dependencies.sha256')), 'lib');
  return Object.fromEntries(readdirSync(lib).map((f) => [f, join(lib, f)]));
}

const JAVA_JARS = ['javacpp-1.5.13.jar', 'openblas-0.3.31-1.5.13.jar', 'crac-1.4.0.jar'];
const PLATFORM_JARS = ['javacpp-1.5.13-linux-x86_64.jar', 'openblas-0.3.31-1.5.13-linux-x86_64.jar'];

/** The deployment package: example/*.class at the root, the Java-only jars in lib/. */
export function buildJavaTask(task: string): void {
  const deps = javaDependencies();
  const classpath = JAVA_JARS.map((j) => deps[j]).join(':');
  mkdirSync(join(task, 'lib'), { recursive: true });
  const sources = readdirSync(join(JAVA_FIXTURES, 'handler', 'example')).map((f) => join(JAVA_FIXTURES, 'handler', 'example', f));
  run('javac', ['--release', '11', '-Xlint:all,-path', '-Werror', '-cp', classpath, '-d', task, ...sources]);
  for (const j of JAVA_JARS) copyFileSync(deps[j], join(task, 'lib', j));
}

/**
 * The archive's content under `root`:
 *   javacpp-1.5.13-linux-x86_64.jar/org/bytedeco/javacpp/linux-x86_64/libjnijavacpp.so
 *   openblas-0.3.31-1.5.13-linux-x86_64.jar/org/bytedeco/openblas/linux-x86_64/
 *       libjniopenblas.so, libopenblas.so.0 (37 MB: a memfd) and libopenblas.so -> libopenblas.so.0, ...
 *                          (JavaCPP's cache, as its Loader extracted it)
 *   lib/greeter.jar        example.archived.Greeter, padded past the memfd threshold (1.5 MiB)
 *   native/libhellojni.so  a JNI library for example.Handler.hello, loaded by its /var/task path
 */
export function buildJavaArchive(root: string, work: string): void {
  const deps = javaDependencies();
  // JavaCPP's cache, filled by JavaCPP itself.
  const populate = join(work, 'populate');
  mkdirSync(populate, { recursive: true });
  const javaCp = JAVA_JARS.map((j) => deps[j]).join(':');
  run('javac', ['--release', '11', '-cp', javaCp, '-d', populate, join(JAVA_FIXTURES, 'cache-builder', 'Populate.java')]);
  run('java', [`-Dorg.bytedeco.javacpp.cachedir=${root}`, '-cp', [javaCp, ...PLATFORM_JARS.map((j) => deps[j]), populate].join(':'), 'Populate']);
  rmSync(join(root, '.lock'), { force: true }); // JavaCPP's lock file while it extracts
  // A jar only the archive has.
  const greeter = join(work, 'greeter');
  run('javac', ['--release', '11', '-d', greeter, join(JAVA_FIXTURES, 'archived', 'example', 'archived', 'Greeter.java')]);
  writeFileSync(join(greeter, 'padding.bin'), randomBytes(1.5 * MiB));
  mkdirSync(join(root, 'lib'), { recursive: true });
  run('jar', ['--create', '--no-compress', '--file', join(root, 'lib', 'greeter.jar'), '-C', greeter, '.']);
  hellojni(join(root, 'native', 'libhellojni.so'));
}

/** The JNI library of example.Handler.hello, built for `target`. */
export function hellojni(out: string, target = 'x86_64-linux-gnu'): string {
  return zigCc(out, ['-shared', '-fPIC', `-I${JDK_INCLUDE}`, `-I${JDK_INCLUDE}/linux`, '-Wl,-soname,libhellojni.so',
    join(JAVA_FIXTURES, 'native', 'hellojni.c')], target);
}
