/**
 * SnapStart through the real lifecycle: awslambdaric runs the before-snapshot hooks, waits in
 * restore/next, runs the after-restore hooks, all registered through the real
 * snapshot_restore_py, in the Lambda sandbox, driven by our Runtime API server
 * (support/runtime-api.ts says why not the emulator). Between snapshot and restore the test
 * changes the tree the way a restore could find it.
 */
import { rmSync, symlinkSync } from 'node:fs';
import { TASK_ROOT } from './support/function';
import { NativeArchiveBucket } from './support/native';
import { requireBuilt } from './support/paths';
import { SnapStartFunction } from './support/snapstart';

const TREE = '/tmp/snaploader';
/** Lambda gives the runtime and its after-restore hooks 10 s (AWS docs, "SnapStart runtime hooks"). */
const AFTER_RESTORE_LIMIT_MS = 10000;
let archive: NativeArchiveBucket;

beforeAll(async () => {
  requireBuilt();
  archive = await NativeArchiveBucket.start('functions', 'snapstart');
}, 180000);

afterAll(async () => {
  await archive?.stop();
});

async function snapshotted(): Promise<SnapStartFunction> {
  const fn = await SnapStartFunction.start({ handler: 'snapstart_handler.handler', task: TASK_ROOT, env: archive.env() });
  await fn.snapshotReady();
  return fn;
}

test('after restore our hook repairs moved memfd links before the function\'s own hooks run, well inside Lambda\'s 10 s', async () => {
  const fn = await snapshotted();
  try {
    // What a restore may find: one memfd link gone, one pointing at a process that is not ours.
    rmSync(fn.tmpPath(`${TREE}/fancy/_native.so`));
    rmSync(fn.tmpPath(`${TREE}/vendor/lib/libfar.so`));
    symlinkSync('/proc/999999/fd/3', fn.tmpPath(`${TREE}/vendor/lib/libfar.so`));
    const restore = await fn.restore();
    expect(restore).toMatchObject({ restored: true });
    const ms = (restore as { ms: number }).ms;
    process.stdout.write(`SnapStart after-restore (snaploader's hook + the function's): ${ms.toFixed(0)} ms of Lambda's ${AFTER_RESTORE_LIMIT_MS}\n`);
    expect(ms).toBeLessThan(AFTER_RESTORE_LIMIT_MS);
    const r = await fn.invoke();
    expect(r.status).toBe('success');
    expect(JSON.parse(r.body)).toEqual({ events: ['before-snapshot', 'after-restore: answer 42'], answer: 42 });
    const log = fn.functionLog();
    const ours = log.indexOf('snaploader: after restore: 5 mapped files resolve, 2 links repaired');
    expect(ours).toBeGreaterThanOrEqual(0);
    expect(log.indexOf('function: after-restore hook ran')).toBeGreaterThan(ours);
  } finally {
    await fn.stop();
  }
});

test('a mapped file that cannot be recovered fails the restore with Runtime.AfterRestoreError naming it', async () => {
  const fn = await snapshotted();
  try {
    rmSync(fn.tmpPath(`${TREE}/lib/libabs.so`)); // a small file, placed in /tmp: nothing to rebuild it from
    const restore = await fn.restore();
    expect(restore).toMatchObject({ restored: false, exitCode: 65, error: { type: 'Runtime.AfterRestoreError' } });
    const body = JSON.parse((restore as { error: { body: string } }).error.body);
    expect(body.errorType).toBe('RestoreError');
    expect(body.errorMessage).toBe(`snaploader: after restore: 1 of 5 mapped files do not resolve (first: ${TREE}/lib/libabs.so), 0 links repaired: ` +
      `the archive's tree in ${TREE} changed while the function was snapshotted and cannot be recovered; publish a new version to take a new snapshot`);
    expect(fn.functionLog()).not.toContain('function: after-restore hook ran');
  } finally {
    await fn.stop();
  }
});
