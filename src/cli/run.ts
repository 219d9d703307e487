/**
 * `snaploader run`: a function through the layer, locally, the way Lambda runs it: the
 * archive on an embedded S3 server (s3rver), the layer built from this checkout, the real
 * Runtime Interface Emulator and the managed runtime in the Lambda-like sandbox of
 * src/dev/lambda.ts (Linux, as root). Prints the response and snaploader's init lines.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { LambdaFunction } from '../dev/lambda';
import { LocalS3 } from '../dev/local-s3';
import { requireBuilt } from '../dev/paths';
import { COMMON_HELP, intOption, stringOption, type CommandSpec, type Parsed } from './args';
import { CliError, EXIT, UsageError } from './errors';
import type { Output } from './output';

export const RUN: CommandSpec = {
  name: 'run',
  summary: 'run a function through the layer locally, in a Lambda-like sandbox, with your archive',
  positionals: [1, 1],
  options: {
    archive: { type: 'string', short: 'a' },
    event: { type: 'string', short: 'e' },
    task: { type: 'string' },
    memory: { type: 'string', short: 'm' },
    set: { type: 'string', multiple: true },
    log: { type: 'boolean' },
  },
  help: `Usage: snaploader run <module.handler> --archive libs.zip [--event event.json] [options]

Runs the function as Lambda would, with the layer: the archive is served by an embedded S3
server, the Python runtime and the AWS Lambda Runtime Interface Emulator start the function
in a sandbox (read-only root, /var/task and /opt read-only, a 512 MB /tmp, no /dev/shm,
uid 993, 1,024 file descriptors), and one invoke runs the init and the handler. Prints the
response and snaploader's init lines. Needs Linux, root, the layer built from this checkout
(make build-x86_64) and Go (the emulator is built once into the cache).

Options:
  -a, --archive FILE      the zip to load (required)
  -e, --event FILE        the event, a JSON file (default {})
  --task DIR              the function's code, mounted at /var/task (default: the current directory)
  -m, --memory MB         the function's memory (default 1024)
  --set NAME=VALUE        another variable of the function (repeatable), e.g. SNAPLOADER_DEBUG=1
  --log                   print the function's whole log, not only snaploader's lines

${COMMON_HELP}

Exit status: 0 the handler returned; 8 the init or the handler failed (the response says
how); 3 an input is missing; 2 bad command line.`,
};

/** The init or the handler failed: Lambda's error object came back. */
export const EXIT_FUNCTION_FAILED = 8;

export function readEvent(path: string | undefined): unknown {
  if (path === undefined) return {};
  if (!existsSync(path)) throw new CliError('INPUT_NOT_FOUND', `event file ${path} does not exist`, EXIT.INPUT);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`snaploader run: ${path} is not JSON: ${(err as Error).message}`);
  }
}

export function parseSets(sets: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(s.slice(0, eq))) throw new UsageError(`snaploader run: --set takes NAME=VALUE, not ${JSON.stringify(s)}`);
    env[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return env;
}

export async function run(parsed: Parsed, out: Output): Promise<number> {
  const v = parsed.values;
  const handler = parsed.positionals[0];
  if (!/^[\w./-]+\.[\w]+$/.test(handler)) throw new UsageError(`snaploader run: the handler is module.function (e.g. app.handler), not ${JSON.stringify(handler)}`);
  const archive = stringOption(v, 'archive');
  if (!archive) throw new UsageError('snaploader run: --archive is required (the zip to load)');
  if (!existsSync(archive) || !statSync(archive).isFile()) throw new CliError('INPUT_NOT_FOUND', `archive ${archive} does not exist: snaploader pack makes one`, EXIT.INPUT);
  const task = resolve(stringOption(v, 'task') ?? '.');
  if (!existsSync(task) || !statSync(task).isDirectory()) throw new CliError('INPUT_NOT_FOUND', `task directory ${task} does not exist`, EXIT.INPUT);
  const event = readEvent(stringOption(v, 'event'));
  const memoryMb = intOption('run', v, 'memory', 128, 10240) ?? 1024;
  const extra = parseSets((v.set as string[] | undefined) ?? []);
  try {
    requireBuilt();
  } catch (err) {
    throw new CliError('INPUT_NOT_FOUND', `${(err as Error).message.replace('make test does', 'make build-x86_64 does')}`, EXIT.INPUT);
  }
  const s3 = await new LocalS3().start();
  let fn: LambdaFunction | null = null;
  try {
    await s3.createBucket('snaploader-run');
    await s3.put('snaploader-run', 'libs.zip', readFileSync(archive));
    fn = await LambdaFunction.start({
      handler, task, memoryMb,
      env: {
        AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh',
        SNAPLOADER_BUCKET: 'snaploader-run',
        SNAPLOADER_KEY: 'libs.zip',
        ...s3.env(),
        ...extra,
      },
    });
    const res = await fn.invoke(event);
    let response: unknown = res.body;
    try {
      response = JSON.parse(res.body);
    } catch {
      /* not JSON: shown as it is */
    }
    const failed = res.status !== 200 || (typeof response === 'object' && response !== null && 'errorType' in response);
    const snaploaderLines = fn.snaploaderLog();
    const log = fn.functionLog();
    out.result({ handler, archive, status: res.status, failed, response, snaploader: snaploaderLines, log });
    if (v.log) for (const l of log) out.line(l);
    else for (const l of snaploaderLines) out.line(l);
    out.line();
    out.line(`${failed ? 'function failed' : 'response'} (${res.status}):`);
    out.line(typeof response === 'string' ? response : JSON.stringify(response, null, 2));
    return failed ? EXIT_FUNCTION_FAILED : EXIT.OK;
  } finally {
    await fn?.stop();
    await s3.stop();
  }
}
