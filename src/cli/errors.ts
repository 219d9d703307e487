/**
 * The command-line tool's failures. Each has a code (shown and in --json) and an exit status
 * that scripts can rely on (docs/cli.md lists them); the message says what to do.
 */
import { SnaploaderError } from '../errors';

/** Exit statuses: 0 success; the rest by kind of failure. */
export const EXIT = {
  OK: 0,
  /** A failure the tool did not expect: a bug, or the machine (disk full, permissions). */
  INTERNAL: 1,
  /** Bad command line: unknown command or option, missing or malformed value. */
  USAGE: 2,
  /** The input does not exist or cannot be read: a directory, a file, an S3 object. */
  INPUT: 3,
  /** The archive is not one the init program accepts (not a zip, unsafe names, conflicts). */
  ARCHIVE: 4,
  /** The archive does not fit the function: a budget is exceeded (the message names it). */
  BUDGET: 5,
  /** S3 refused or failed an upload (missing bucket, access denied, network). */
  UPLOAD: 6,
  /** pip could not install the requirements. */
  PIP: 7,
} as const;

export type CliErrorCode = 'USAGE' | 'INPUT_NOT_FOUND' | 'INPUT_UNREADABLE' | 'UNSAFE_SYMLINK' | 'UPLOAD_FAILED' | 'PIP_FAILED' | 'PROFILE_INVALID' | 'PROFILE_MISMATCH' | 'FUNCTION_FAILED';

export class CliError extends Error {
  constructor(readonly code: CliErrorCode, message: string, readonly exitCode: number) {
    super(message);
    this.name = new.target.name;
  }
}

/** A command line the tool cannot run: the message says what was wrong and `--help` shows the rest. */
export class UsageError extends CliError {
  constructor(message: string) {
    super('USAGE', message, EXIT.USAGE);
  }
}

/** The exit status and code for any failure, ours or the init program's shared code's. */
export function classifyFailure(err: unknown): { exitCode: number; code: string; message: string } {
  if (err instanceof CliError) return { exitCode: err.exitCode, code: err.code, message: err.message };
  if (err instanceof SnaploaderError) {
    const code = err.code;
    let exitCode: number = EXIT.ARCHIVE;
    if (code === 'BUDGET_EXCEEDED') exitCode = EXIT.BUDGET;
    else if (code.startsWith('SOURCE_') || code === 'CONFIG_INVALID') exitCode = EXIT.INPUT;
    return { exitCode, code, message: err.message };
  }
  const e = err as { code?: string; message?: string };
  return { exitCode: EXIT.INTERNAL, code: 'INTERNAL', message: `${e?.message ?? String(err)}${e?.code ? ` (${e.code})` : ''}` };
}
