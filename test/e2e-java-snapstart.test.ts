/**
 * SnapStart for Java through the real lifecycle: the real Java runtime interface client, with
 * AWS_LAMBDA_INITIALIZATION_TYPE=snap-start, runs the global CRaC context's beforeCheckpoint
 * (the function's org.crac resources reach it through -Dorg.crac.Core.Compat, as on Lambda),
 * waits in restore/next, then runs afterRestore in registration order: snaploader's agent's
 * resource first (registered before the runtime's main class ran), then the function's. Driven
 * by our Runtime API server (support/runtime-api.ts says why not the emulator), in the Lambda
 * sandbox; between snapshot and restore the test changes the tree as a restore could find it.
 */
import { rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { zipDir } from './support/archive';
import { scratch } from './support/function';
import { buildJavaArchive, buildJavaTask } from './support/java-function';
import { requireBuilt } from './support/paths';
import { JAVA } from '../src/dev/runtimes/java';
import { LocalS3 } from './support/s3';
import { SnapStartFunction } from './support/snapstart';

const TREE = '/tmp/snaploader';
const OPENBLAS_DIR = 'openblas-0.3.31-1.5.13-linux-x86_64.jar/org/bytedeco/openblas/linux-x86_64';
/** Lambda gives the runtime and its after-restore hooks 10 s (AWS docs, "SnapStart runtime hooks"). */
const AFTER_RESTORE_LIMIT_MS = 10000;
let s3: LocalS3;
let work: ReturnType<typeof scratch>;
let task: string;

beforeAll(async () => {
  requireBuilt();
  work = scratch('java-snapstart');
  s3 = await new LocalS3().start();
  await s3.createBucket('functions');
  task = join(work.dir, 'task');
  buildJavaTask(task);
  const archive = join(work.dir, 'archive');
  buildJavaArchive(archive, join(work.dir, 'build'));
  await s3.put('functions', 'java.zip', zipDir(archive, join(work.dir, 'java.zip')));
}, 900000);

afterAll(async () => {
  await s3?.stop();
  work?.cleanup();
});

async function snapshotted(): Promise<SnapStartFunction> {
  const fn = await SnapStartFunction.start({ runtime: JAVA, handler: 'example.SnapHandler::handleRequest', task, env: {
    AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh', ...s3.env(), SNAPLOADER_SOURCE: 's3://functions/java.zip',
  } });
  await fn.snapshotReady();
  return fn;
}

test('after restore the agent\'s CRaC resource repairs moved memfd links before the function\'s own afterRestore, well inside Lambda\'s 10 s', async () => {
  const fn = await snapshotted();
  try {
    // What a restore may find: one memfd link gone, one pointing at a process that is not ours.
    rmSync(fn.tmpPath(`${TREE}/${OPENBLAS_DIR}/libjniopenblas.so`));
    rmSync(fn.tmpPath(`${TREE}/lib/greeter.jar`));
    symlinkSync('/proc/999999/fd/3', fn.tmpPath(`${TREE}/lib/greeter.jar`));
    const restore = await fn.restore();
    expect(restore).toMatchObject({ restored: true });
    const ms = (restore as { ms: number }).ms;
    process.stdout.write(`Java SnapStart after-restore (snaploader's resource + the function's): ${ms.toFixed(0)} ms of Lambda's ${AFTER_RESTORE_LIMIT_MS}\n`);
    expect(ms).toBeLessThan(AFTER_RESTORE_LIMIT_MS);
    const r = await fn.invoke({});
    expect(r.status).toBe('success');
    expect(JSON.parse(r.body)).toMatchObject({ product: [19, 22, 43, 50], primed: [19, 22, 43, 50], events: ['before-checkpoint', 'after-restore'] });
    const log = fn.functionLog();
    const ours = log.findIndex((l) => /^snaploader: after restore: \d+ mapped files resolve, 2 links repaired$/.test(l));
    expect(ours).toBeGreaterThanOrEqual(0);
    expect(log.indexOf('function: after-restore hook ran')).toBeGreaterThan(ours);
  } finally {
    await fn.stop();
  }
});

test('a mapped file that cannot be recovered fails the restore with Runtime.AfterRestoreError, and the log names it', async () => {
  const fn = await snapshotted();
  try {
    rmSync(fn.tmpPath(`${TREE}/native/libhellojni.so`)); // a small file, placed in /tmp: nothing to rebuild it from
    const restore = await fn.restore();
    expect(restore).toMatchObject({ restored: false, error: { type: 'Runtime.AfterRestoreError' } });
    const { error, exitCode } = restore as { error: { body: string }; exitCode: number | null };
    expect(exitCode).toBe(64); // the Java runtime client's exit status for a failed hook
    // The runtime client runs every resource's afterRestore and reports one RestoreException
    // holding their failures; the reason is snaploader's line in the log.
    expect(JSON.parse(error.body).errorType).toBe('com.amazonaws.services.lambda.crac.RestoreException');
    expect(fn.snaploaderLog()).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(
      `^snaploader: after restore: 1 of \\d+ mapped files do not resolve \\(first: ${TREE}/native/libhellojni\\.so\\), 0 links repaired: ` +
      `the archive's tree in ${TREE} changed while the function was snapshotted and cannot be recovered; publish a new version to take a new snapshot$`))]));
  } finally {
    await fn.stop();
  }
});
