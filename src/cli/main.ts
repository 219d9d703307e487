/**
 * `snaploader`: the command-line tool for users of the layer. Dispatches to a command,
 * prints its report (or --json), and exits with the status docs/cli.md documents.
 */
import { COMMON_HELP, parseCommand, type CommandSpec, type Parsed } from './args';
import { classifyFailure, EXIT, UsageError } from './errors';
import { INSPECT, inspect } from './inspect';
import { Output } from './output';
import { PACK, pack } from './pack';
import { RUN, run } from './run';
import { TRACE, trace } from './trace';

interface Command {
  spec: CommandSpec;
  run(parsed: Parsed, out: Output): Promise<number>;
}

const COMMANDS: Command[] = [
  { spec: PACK, run: pack },
  { spec: INSPECT, run: inspect },
  { spec: RUN, run },
  { spec: TRACE, run: trace },
];

declare const SNAPLOADER_VERSION: string | undefined;
const VERSION = typeof SNAPLOADER_VERSION === 'string' ? SNAPLOADER_VERSION : 'development';

const MAIN_HELP = `Usage: snaploader <command> [options]

Builds, checks and uploads the archive of native libraries the snaploader layer loads at init.

Commands:
${COMMANDS.map((c) => `  ${c.spec.name.padEnd(10)} ${c.spec.summary}`).join('\n')}

Run \`snaploader <command> --help\` for a command's options.

${COMMON_HELP}
  --version      the tool's version

Exit status: 0 success; 1 unexpected failure; 2 bad command line; 3 input missing or
unreadable; 4 archive refused; 5 a budget exceeded; 6 upload failed; 7 pip failed;
8 the function failed (run, trace).`;

export async function runCli(argv: string[], out?: Output): Promise<number> {
  const [name, ...rest] = argv;
  const json = rest.includes('--json');
  const output = out ?? new Output(json, rest.includes('--quiet') || rest.includes('-q'));
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      process.stdout.write(`${MAIN_HELP}\n`);
      return name === undefined ? EXIT.USAGE : EXIT.OK;
    }
    if (name === '--version') {
      process.stdout.write(`snaploader ${VERSION}\n`);
      return EXIT.OK;
    }
    const command = COMMANDS.find((c) => c.spec.name === name);
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(name)}: the commands are ${COMMANDS.map((c) => c.spec.name).join(', ')} (snaploader --help)`);
    const parsed = parseCommand(command.spec, rest);
    if (parsed.values.help) {
      process.stdout.write(`${command.spec.help}\n`);
      return EXIT.OK;
    }
    return await command.run(parsed, output);
  } catch (err) {
    const f = classifyFailure(err);
    process.stderr.write(`snaploader: ${f.code}: ${f.message.replace(/\s*\n\s*/g, ' ')}\n`);
    if (json) process.stdout.write(`${JSON.stringify({ error: { code: f.code, message: f.message, exitCode: f.exitCode } }, null, 2)}\n`);
    return f.exitCode;
  }
}

/** The process entry: bin/snaploader.cjs calls it, and so does `node build/cli.js`. */
export function main(): void {
  // The SDK's notice about the machine's Node version is not the user's archive's business.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}

if (require.main === module) main();
