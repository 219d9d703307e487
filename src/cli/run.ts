/**
 * `snaploader run`: a function through the layer, locally, the way Lambda runs it: the
 * archive on an embedded S3 server (s3rver), the layer built from this checkout, the real
 * Runtime Interface Emulator and the managed runtime in the Lambda-like sandbox of
 * src/dev/lambda.ts (Linux, as root). Prints the response and snaploader's init lines.
 */
import { COMMON_HELP, stringOption, type CommandSpec, type Parsed } from './args';
import { EXIT } from './errors';
import { EXIT_FUNCTION_FAILED, functionInputs, LocalFunction, outcome, readEvent } from './local-function';
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

export async function run(parsed: Parsed, out: Output): Promise<number> {
  const inputs = functionInputs('run', parsed);
  const event = readEvent('run', stringOption(parsed.values, 'event'));
  const local = await LocalFunction.start(inputs);
  try {
    const { fn } = local;
    const res = await fn.invoke(event);
    const { response, failed } = outcome(res);
    const snaploaderLines = fn.snaploaderLog();
    const log = fn.functionLog();
    out.result({ handler: inputs.handler, archive: inputs.archive, status: res.status, failed, response, snaploader: snaploaderLines, log });
    if (parsed.values.log) for (const l of log) out.line(l);
    else for (const l of snaploaderLines) out.line(l);
    out.line();
    out.line(`${failed ? 'function failed' : 'response'} (${res.status}):`);
    out.line(typeof response === 'string' ? response : JSON.stringify(response, null, 2));
    return failed ? EXIT_FUNCTION_FAILED : EXIT.OK;
  } finally {
    await local.stop();
  }
}
