/**
 * `make demo`: the main job end to end on an embedded local S3.
 * Builds a sample archive of native code (a CPython extension module and the shared libraries
 * it needs), uploads it to a local S3-compatible server, and runs an unchanged Python handler
 * through wrapper.sh exactly as Lambda's runtime would, then cleans up.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipDir } from '../support/archive';
import { pythonArgv, scratch, TASK_ROOT } from '../support/function';
import { buildNativePackage } from '../support/native';
import { requireBuilt } from '../support/paths';
import { baseEnv, run } from '../support/run';
import { LocalS3 } from '../support/s3';

const say = (s: string): void => void process.stdout.write(`demo: ${s}\n`);

async function main(): Promise<number> {
  requireBuilt();
  const work = scratch('demo');
  const s3 = await new LocalS3().start();
  try {
    say(`local S3 at ${s3.endpoint}`);
    const pkg = join(work.dir, 'pkg');
    buildNativePackage(pkg, join(work.dir, 'build'));
    const zip = zipDir(pkg, join(work.dir, 'libs.zip'));
    await s3.createBucket('demo-bucket');
    await s3.put('demo-bucket', 'libs.zip', zip);
    say(`uploaded s3://demo-bucket/libs.zip (${zip.length} bytes): fancy/_native.so + greet_helper.so, vendor/lib/libfar.so, lib/libabs.so`);
    say(`handler (unchanged code, ${join(TASK_ROOT, 'handler.py')}):`);
    for (const line of readFileSync(join(TASK_ROOT, 'handler.py'), 'utf8').split('\n').filter((l) => /^\s*(import|from) |CDLL/.test(l))) say(`  ${line.trim()}`);
    const env = baseEnv({
      ...s3.env(),
      LAMBDA_TASK_ROOT: TASK_ROOT,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '1024',
      SNAPLOADER_BUCKET: 'demo-bucket',
      SNAPLOADER_KEY: 'libs.zip',
      SNAPLOADER_TARGET_DIR: work.target,
    });
    say('running: wrapper.sh /usr/bin/python3 <bootstrap> handler.handler (as AWS_LAMBDA_EXEC_WRAPPER)');
    const r = await run(pythonArgv('handler.handler'), env);
    for (const line of r.stderr.trim().split('\n')) say(`init: ${line}`);
    const result = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (r.code !== 0 || !result) {
      say(`FAILED (exit ${r.code})\n${r.stdout}`);
      return 1;
    }
    const out = JSON.parse(result.slice(7));
    say(`handler returned: answer=${out.answer} abs=${out.abs} pid=${out.pid} (wrapper pid ${r.pid})`);
    say(`libraries mapped from memfds: ${out.memfd_maps.join(', ')}`);
    return 0;
  } finally {
    await s3.stop();
    work.cleanup();
    say('cleaned up');
  }
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`demo failed: ${err?.stack ?? err}\n`);
  process.exit(1);
});
