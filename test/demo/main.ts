/**
 * `make demo`: the main job end to end on an embedded local S3.
 * Builds a sample archive of native code (a CPython extension module and the shared libraries
 * it needs), uploads it to a local S3-compatible server, and invokes an unchanged Python
 * handler with the layer attached, in the same Lambda sandbox the tests use: the real runtime
 * interface emulator and awslambdaric, a read-only root, an unprivileged user. Then cleans up.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipDir } from '../support/archive';
import { scratch, TASK_ROOT } from '../support/function';
import { LambdaFunction } from '../support/lambda';
import { buildNativePackage } from '../support/native';
import { requireBuilt } from '../support/paths';
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
    const env = {
      AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh',
      ...s3.env(),
      SNAPLOADER_BUCKET: 'demo-bucket',
      SNAPLOADER_KEY: 'libs.zip',
    };
    say('function: python, handler handler.handler, layers snaploader + snaploader-node at /opt, 1024 MB');
    for (const [k, v] of Object.entries(env).filter(([k]) => !k.startsWith('AWS_SECRET') && !k.startsWith('AWS_ACCESS'))) say(`  ${k}=${v}`);
    say('starting the runtime interface emulator; invoking with {"demo": true} (the first invoke runs the init)');
    const fn = await LambdaFunction.start({ handler: 'handler.handler', task: TASK_ROOT, env });
    try {
      const r = await fn.invoke({ demo: true });
      for (const line of fn.functionLog()) say(`log: ${line}`);
      if (r.status !== 200) {
        say(`FAILED: the invoke returned ${r.status} ${r.body}`);
        return 1;
      }
      say(`invoke response (${r.status}): ${r.body}`);
      const out = JSON.parse(r.body);
      say(`the handler ran as uid ${out.uid} in PID ${out.pid} (the PID the emulator started: ${fn.bootstrapPid()})`);
      say(`answer=${out.answer} abs=${out.abs}; libraries mapped from memfds: ${out.memfd_maps.join(', ')}`);
    } finally {
      await fn.stop();
    }
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
