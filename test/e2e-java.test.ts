/**
 * Java functions, end to end, as Lambda runs them: the real runtime interface emulator starts
 * the real Java runtime interface client (Maven Central) on the machine's JDK through
 * wrapper.sh inside the Lambda sandbox (support/lambda.ts, runtimes/java.ts). The handler
 * (test/fixtures/java/) is written for a deployment package that holds everything; its native
 * libraries and one jar are only in the S3 archive (support/java-function.ts).
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipDir } from './support/archive';
import { scratch } from './support/function';
import { buildJavaArchive, buildJavaTask, hellojni } from './support/java-function';
import { json, LambdaFunction, type FunctionConfig } from './support/lambda';
import { requireBuilt } from './support/paths';
import { JAVA } from '../src/dev/runtimes/java';
import { LocalS3 } from './support/s3';

const BUCKET = 'functions';
const TREE = '/tmp/snaploader';
const AGENT = '/opt/snaploader/java/snaploader-agent.jar';
const OPENBLAS_DIR = 'openblas-0.3.31-1.5.13-linux-x86_64.jar/org/bytedeco/openblas/linux-x86_64';
let s3: LocalS3;
let work: ReturnType<typeof scratch>;
let task: string;

beforeAll(async () => {
  requireBuilt();
  work = scratch('e2e-java');
  s3 = await new LocalS3().start();
  await s3.createBucket(BUCKET);
  task = join(work.dir, 'task');
  buildJavaTask(task);
  const archive = join(work.dir, 'archive');
  buildJavaArchive(archive, join(work.dir, 'build'));
  // A multi-architecture archive may hold a library for the other one; loading it must say which file.
  hellojni(join(archive, 'native', 'arm64', 'libhellojni.so'), 'aarch64-linux-gnu');
  await s3.put(BUCKET, 'java.zip', zipDir(archive, join(work.dir, 'java.zip')));
  const bad = join(work.dir, 'bad');
  writeFileSync(join(buildBad(bad), 'lib', 'broken.jar'), 'this is a text file, not a jar\n');
  await s3.put(BUCKET, 'broken-jar.zip', zipDir(bad, join(work.dir, 'broken-jar.zip')));
}, 900000);

afterAll(async () => {
  await s3?.stop();
  work?.cleanup();
});

function buildBad(dir: string): string {
  hellojni(join(dir, 'native', 'libhellojni.so'));
  const lib = join(dir, 'lib');
  mkdirSync(lib, { recursive: true });
  return dir;
}

/** A Java function with the layer's wrapper, reading `key` from the local S3. */
function config(key: string, env: Record<string, string> = {}): FunctionConfig {
  return {
    runtime: JAVA, handler: 'example.Handler::handleRequest', task,
    env: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh', ...s3.env(), SNAPLOADER_BUCKET: BUCKET, SNAPLOADER_KEY: key, ...env },
  };
}

describe('a Java handler whose natives and a jar live only in the S3 archive', () => {
  let fn: LambdaFunction;

  beforeAll(async () => {
    // The user's own JAVA_TOOL_OPTIONS: JavaCPP's cache under /tmp, as its users set it on Lambda.
    fn = await LambdaFunction.start(config('java.zip', { JAVA_TOOL_OPTIONS: '-Dorg.bytedeco.javacpp.cachedir=/tmp/javacpp-cache' }));
  }, 60000);

  afterAll(async () => {
    await fn?.stop();
  });

  test('JavaCPP loads OpenBLAS and its DT_NEEDED libraries from the archive, the 37 MB libopenblas from a memfd, and the handler multiplies with it', async () => {
    const r = await fn.invoke({ action: 'openblas' });
    expect(r.status).toBe(200);
    const out = json(r);
    expect(out.product).toEqual([19, 22, 43, 50]);
    const mapped = out.mapped as string[];
    expect(mapped).toEqual(expect.arrayContaining(['/memfd:libopenblas.so.0 (deleted)', '/memfd:libjniopenblas.so (deleted)',
      `${TREE}/${OPENBLAS_DIR}/libjniopenblas_nolapack.so`]));
    // Loaded where they are: nothing copied into JavaCPP's cache under /tmp.
    expect(mapped.filter((m) => !m.startsWith(`${TREE}/`) && !m.startsWith('/memfd:'))).toEqual([]);
    const cache = fn.tmpPath('/tmp/javacpp-cache');
    const copies = existsSync(cache) ? readdirSync(cache, { recursive: true }).map(String)
      .filter((f) => /\.so/.test(f) && !lstatSync(join(cache, f)).isSymbolicLink()) : [];
    expect(copies).toEqual([]);
  });

  test('java.library.path holds the tree\'s library directories from the JVM\'s start, and the user\'s JAVA_TOOL_OPTIONS stay after the agent', async () => {
    const out = json(await fn.invoke({ action: 'properties' }));
    const paths = String(out['java.library.path']).split(':');
    expect(paths).toEqual(expect.arrayContaining([`${TREE}/native`, `${TREE}/${OPENBLAS_DIR}`]));
    expect(out.JAVA_TOOL_OPTIONS).toBe(`-javaagent:${AGENT} -Dorg.bytedeco.javacpp.cachedir=/tmp/javacpp-cache`);
  });

  test('System.loadLibrary finds the archive\'s JNI library through java.library.path', async () => {
    const out = json(await fn.invoke({ action: 'loadLibrary', name: 'hellojni' }));
    expect(out.hello).toBe('hello from JNI, lambda');
    expect(out.mapped).toEqual([`${TREE}/native/libhellojni.so`]);
  });

  test('System.load of the original /var/task path loads the JNI library from the archive', async () => {
    const out = json(await fn.invoke({ action: 'load', path: '/var/task/native/libhellojni.so' }));
    expect(out.hello).toBe('hello from JNI, lambda');
    expect(out.mapped).toEqual([`${TREE}/native/libhellojni.so`]);
  });

  test('a class from a jar that exists only in the archive loads as if the jar were in the deployment package, from its memfd', async () => {
    const out = json(await fn.invoke({ action: 'jar' }));
    expect(out.greeting).toBe('hello lambda from a jar in the archive');
    expect(out.from).toBe(`file:${TREE}/lib/greeter.jar`);
    expect(out.resourceBytes).toBe(1.5 * 1024 * 1024);
  });

  test('a JNI library built for the other architecture is named at start, and loading it fails', async () => {
    const out = json(await fn.invoke({ action: 'loadError', path: '/var/task/native/arm64/libhellojni.so' }));
    expect(out.error).toMatch(/AARCH64/);
    expect(fn.snaploaderLog()).toContain('snaploader: warning: /var/task/native/arm64/libhellojni.so (archive entry native/arm64/libhellojni.so) ' +
      'is a library for arm64 (aarch64), not for this x86_64 function: loading it will fail; put the x86_64 build in the archive');
  });

  test('the init log has snaploader\'s one summary line and no other', async () => {
    expect((await fn.invoke({ action: 'properties' })).status).toBe(200); // the emulator runs the init at the first invoke
    const ours = fn.snaploaderLog().filter((l) => !l.startsWith('snaploader: warning:'));
    expect(ours).toHaveLength(1);
    process.stdout.write(`Java function init: ${ours[0]}\n`);
    expect(ours[0]).toMatch(/^snaploader: loaded \d+ files .* from s3:\/\/functions\/java\.zip in [\d.]+ s: \d+ in memory/);
  });
});

test('JavaCPP with org.bytedeco.javacpp.pathsFirst finds OpenBLAS through java.library.path first', async () => {
  const fn = await LambdaFunction.start(config('java.zip', { JAVA_TOOL_OPTIONS: '-Dorg.bytedeco.javacpp.pathsFirst=true' }));
  try {
    const out = json(await fn.invoke({ action: 'openblas' }));
    expect(out.product).toEqual([19, 22, 43, 50]);
    expect(out.mapped).toContain('/memfd:libopenblas.so.0 (deleted)');
    expect((out.mapped as string[]).filter((m) => !m.startsWith(`${TREE}/`) && !m.startsWith('/memfd:'))).toEqual([]);
  } finally {
    await fn.stop();
  }
});

test('a jar in the archive that is not a zip fails the init with one line naming it', async () => {
  const fn = await LambdaFunction.start(config('broken-jar.zip'));
  try {
    const r = await fn.invoke({ action: 'properties' });
    expect(r.status).toBe(502);
    const line = fn.snaploaderLog().find((l) => l.includes('broken.jar'));
    expect(line).toMatch(/^snaploader: JAR_INVALID: \/var\/task\/lib\/broken\.jar \(archive entry lib\/broken\.jar\) is not a jar the JVM can open: .+: rebuild it \(jar or zip\), or leave it out of the archive with SNAPLOADER_EXCLUDE$/);
  } finally {
    await fn.stop();
  }
});
