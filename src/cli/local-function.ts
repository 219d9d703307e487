/**
 * What `snaploader run` and `snaploader trace` share: the inputs that name a local function
 * (handler, archive, task directory, memory, extra variables), and the function itself: the
 * archive on an embedded S3 server (s3rver), the layer built from this checkout, the real
 * Runtime Interface Emulator and the managed runtime in the Lambda-like sandbox of
 * src/dev/lambda.ts.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { LambdaFunction, type InvokeResult } from '../dev/lambda';
import { LocalS3 } from '../dev/local-s3';
import { requireBuilt } from '../dev/paths';
import { intOption, stringOption, type Parsed } from './args';
import { CliError, EXIT, UsageError } from './errors';

/** The init or the handler failed: Lambda's error object came back. */
export const EXIT_FUNCTION_FAILED = 8;

export interface FunctionInputs {
  handler: string;
  archive: string;
  task: string;
  memoryMb: number;
  /** --set NAME=VALUE: more of the function's variables. */
  extra: Record<string, string>;
}

export function readEvent(command: string, path: string | undefined): unknown {
  if (path === undefined) return {};
  if (!existsSync(path)) throw new CliError('INPUT_NOT_FOUND', `event file ${path} does not exist`, EXIT.INPUT);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`snaploader ${command}: ${path} is not JSON: ${(err as Error).message}`);
  }
}

export function parseSets(command: string, sets: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(s.slice(0, eq))) throw new UsageError(`snaploader ${command}: --set takes NAME=VALUE, not ${JSON.stringify(s)}`);
    env[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return env;
}

/** The function `command` names on its command line, checked; the layer must be built. */
export function functionInputs(command: string, parsed: Parsed): FunctionInputs {
  const v = parsed.values;
  const handler = parsed.positionals[0];
  if (!/^[\w./-]+\.[\w]+$/.test(handler)) throw new UsageError(`snaploader ${command}: the handler is module.function (e.g. app.handler), not ${JSON.stringify(handler)}`);
  const archive = stringOption(v, 'archive');
  if (!archive) throw new UsageError(`snaploader ${command}: --archive is required (the zip to load)`);
  if (!existsSync(archive) || !statSync(archive).isFile()) throw new CliError('INPUT_NOT_FOUND', `archive ${archive} does not exist: snaploader pack makes one`, EXIT.INPUT);
  const task = resolve(stringOption(v, 'task') ?? '.');
  if (!existsSync(task) || !statSync(task).isDirectory()) throw new CliError('INPUT_NOT_FOUND', `task directory ${task} does not exist`, EXIT.INPUT);
  const memoryMb = intOption(command, v, 'memory', 128, 10240) ?? 1024;
  const extra = parseSets(command, (v.set as string[] | undefined) ?? []);
  return { handler, archive, task, memoryMb, extra };
}

/** What an invoke answered: the body (parsed when it is JSON) and whether the function failed. */
export function outcome(res: InvokeResult): { response: unknown; failed: boolean } {
  let response: unknown = res.body;
  try {
    response = JSON.parse(res.body);
  } catch {
    /* not JSON: shown as it is */
  }
  const failed = res.status !== 200 || (typeof response === 'object' && response !== null && 'errorType' in response);
  return { response, failed };
}

/** The function with the layer attached, its archive served by an embedded S3 server. */
export class LocalFunction {
  private constructor(readonly fn: LambdaFunction, private readonly s3: LocalS3) {}

  static async start(inputs: FunctionInputs, env: Record<string, string> = {}): Promise<LocalFunction> {
    try {
      requireBuilt();
    } catch (err) {
      throw new CliError('INPUT_NOT_FOUND', `${(err as Error).message.replace('make test does', 'make build-x86_64 does')}`, EXIT.INPUT);
    }
    const s3 = await new LocalS3().start();
    try {
      await s3.createBucket('snaploader-run');
      await s3.put('snaploader-run', 'libs.zip', readFileSync(inputs.archive));
      const fn = await LambdaFunction.start({
        handler: inputs.handler, task: inputs.task, memoryMb: inputs.memoryMb,
        env: {
          AWS_LAMBDA_EXEC_WRAPPER: '/opt/snaploader/wrapper.sh',
          SNAPLOADER_BUCKET: 'snaploader-run',
          SNAPLOADER_KEY: 'libs.zip',
          ...s3.env(),
          ...inputs.extra,
          ...env,
        },
      });
      return new LocalFunction(fn, s3);
    } catch (err) {
      await s3.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.fn.stop();
    await this.s3.stop();
  }
}
