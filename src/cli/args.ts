/**
 * Command-line parsing for every command: node:util's parseArgs, strict, with the command's
 * help text. Unknown options and missing values are usage errors (exit 2).
 */
import { parseArgs } from 'node:util';
import { UsageError } from './errors';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Usage line(s), then a description and the options, as `--help` prints them. */
  help: string;
  options: Record<string, OptionSpec>;
  /** How many positional arguments: [min, max]. */
  positionals: [number, number];
}

/** Options every command takes. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
};

export const COMMON_HELP = `Common options:
  --json         print one JSON object on stdout instead of the text report
  -q, --quiet    no progress bars and no report, only errors (and --json output)
  -h, --help     this help`;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parseCommand(spec: CommandSpec, argv: string[]): Parsed {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...spec.options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`snaploader ${spec.name}: ${(err as Error).message.replace(/\. To specify a positional.*$/s, '')}`);
  }
  const values = parsed.values as Parsed['values'];
  if (values.help) return { values, positionals: parsed.positionals };
  const [min, max] = spec.positionals;
  if (parsed.positionals.length < min) throw new UsageError(`snaploader ${spec.name}: missing argument; usage: ${firstLine(spec.help)}`);
  if (parsed.positionals.length > max) {
    throw new UsageError(`snaploader ${spec.name}: unexpected argument ${JSON.stringify(parsed.positionals[max])}; usage: ${firstLine(spec.help)}`);
  }
  return { values, positionals: parsed.positionals };
}

function firstLine(help: string): string {
  return help.split('\n')[0].replace(/^Usage:\s*/, '');
}

export function stringOption(values: Parsed['values'], name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A whole number option within [min, max]. */
export function intOption(command: string, values: Parsed['values'], name: string, min: number, max: number): number | undefined {
  const v = stringOption(values, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new UsageError(`snaploader ${command}: --${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`);
  }
  return Number(v);
}

export function choiceOption<T extends string>(command: string, values: Parsed['values'], name: string, choices: readonly T[], fallback: T): T {
  const v = stringOption(values, name);
  if (v === undefined) return fallback;
  if (!(choices as readonly string[]).includes(v)) {
    throw new UsageError(`snaploader ${command}: --${name} must be one of ${choices.join(', ')}, not ${JSON.stringify(v)}`);
  }
  return v as T;
}

/** s3://bucket/key, split. */
export function parseS3Url(command: string, url: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  if (!m) throw new UsageError(`snaploader ${command}: ${JSON.stringify(url)} is not an S3 URL: use s3://bucket/path/to/libs.zip`);
  return { bucket: m[1], key: m[2] };
}
