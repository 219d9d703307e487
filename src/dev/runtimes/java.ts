import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { cached, CACHE } from '../cache';
import { ROOT } from '../paths';
import type { SandboxRuntime } from './runtime';

export const JAVA_RUNTIME_SRC = join(ROOT, 'test', 'support', 'sandbox', 'java');

/** The JVM the sandbox's Java runtime uses (/var/lang/bin/java links to it): the machine's JDK. */
export const SANDBOX_JAVA = '/usr/bin/java';

/** Maven's own download store, shared by every Maven fetch below (each result is cached by itself). */
const MAVEN_REPOSITORY = join(CACHE, 'maven-repository');

function run(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15 * 60 * 1000 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

const versions = new Map<string, string>();

/** "17" for the machine's JVM. */
export function javaMajorVersion(java = SANDBOX_JAVA): string {
  if (!versions.has(java)) versions.set(java, readJavaVersion(java));
  return versions.get(java)!;
}

function readJavaVersion(java: string): string {
  // -XshowSettings prints to stderr.
  const out = execFileSync('sh', ['-c', '"$0" -XshowSettings:properties -version 2>&1', java], { encoding: 'utf8' });
  const m = /java\.specification\.version = (\d+)/.exec(out);
  if (!m) throw new Error(`cannot tell the Java version of ${java}`);
  return m[1];
}

/**
 * The jars a pom's dependencies name, fetched from Maven Central by `mvn
 * dependency:copy-dependencies` (with strict checksums) into `<cache>/<name>-<hash>/lib`, every
 * one checked against the SHA-256 list `sums` (`sha256sum` format): a jar missing from it, or
 * one whose digest differs, fails the fetch. The cache key is the pom's and the list's content.
 */
export function mavenJars(name: string, pom: string, sums: string): string {
  const digest = createHash('sha256').update(readFileSync(pom)).update(readFileSync(sums)).digest('hex').slice(0, 12);
  return cached(`${name}-${digest}`, (out) => {
    const lib = join(out, 'lib');
    run('mvn', ['-B', '-q', '-C', '-f', pom, `-Dmaven.repo.local=${MAVEN_REPOSITORY}`, 'dependency:copy-dependencies', `-DoutputDirectory=${lib}`]);
    const want = new Map(readFileSync(sums, 'utf8').trim().split('\n').map((l) => {
      const [hash, file] = l.trim().split(/\s+/);
      return [file, hash] as const;
    }));
    const got = readdirSync(lib).filter((f) => f.endsWith('.jar')).sort();
    for (const f of got) {
      const hash = createHash('sha256').update(readFileSync(join(lib, f))).digest('hex');
      if (want.get(f) !== hash) throw new Error(`${f} from Maven Central has SHA-256 ${hash}, but ${sums} ${want.has(f) ? `pins ${want.get(f)}` : 'does not list it'}`);
    }
    const absent = [...want.keys()].filter((f) => !got.includes(f));
    if (absent.length) throw new Error(`mvn did not fetch ${absent.join(', ')} (listed in ${sums})`);
  });
}

/**
 * /var/runtime of the Java runtime, less its bootstrap: lib/*.jar (the runtime interface client
 * and its dependencies, as Lambda's class path has them) and lib/jni/, its native client taken
 * out of its jar, where Lambda's runtime keeps it.
 */
export function ensureJavaRuntimeClient(): string {
  const jars = join(mavenJars('java-runtime-client', join(JAVA_RUNTIME_SRC, 'pom.xml'), join(JAVA_RUNTIME_SRC, 'runtime-client.sha256')), 'lib');
  return cached(`java-runtime-${createHash('sha256').update(jars).digest('hex').slice(0, 12)}`, (out) => {
    mkdirSync(join(out, 'lib', 'jni'), { recursive: true });
    for (const f of readdirSync(jars)) run('cp', [join(jars, f), join(out, 'lib', f)]);
    const ric = readdirSync(jars).find((f) => f.startsWith('aws-lambda-java-runtime-interface-client-'))!;
    run('unzip', ['-q', '-j', join(jars, ric), 'jni/libaws-lambda-jni.linux-x86_64.so', '-d', join(out, 'lib', 'jni')]);
  });
}

/** Lambda's Java runtime: the machine's JDK as /var/lang/bin/java, the real runtime interface client in /var/runtime/lib. */
export const JAVA: SandboxRuntime = {
  executionEnv: () => `AWS_Lambda_java${javaMajorVersion()}`,
  runtimeDirs: () => [JAVA_RUNTIME_SRC, ensureJavaRuntimeClient()],
  langLinks: () => ({ java: realpathSync(SANDBOX_JAVA) }),
  // The Java runtimes ship no Node.js: the init program must run on the Node layer's.
  hidden: () => ['/usr/bin/node'],
  environment: () => ({}),
};
