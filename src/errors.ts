/**
 * Every failure the init program can report. The helper prints the message as
 * `snaploader: <CODE>: <message>`, which is what Lambda shows as Runtime.ExitError, so a
 * message says what failed and what to do about it, on one line.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'NODE_TOO_OLD'
  | 'LAYER_INCOMPLETE'
  | 'NOT_UNDER_HELPER'
  | 'HELPER_PROTOCOL'
  | 'SOURCE_NOT_FOUND'
  | 'SOURCE_ACCESS_DENIED'
  | 'SOURCE_UNREACHABLE'
  | 'SOURCE_CHANGED'
  | 'SOURCE_STALLED'
  | 'SOURCE_UNAVAILABLE'
  | 'SOURCE_WRONG_REGION'
  | 'SOURCE_TIMEOUT'
  | 'SOURCE_ERROR'
  | 'INTEGRITY_MISMATCH'
  | 'NOT_A_ZIP'
  | 'ZIP_MALFORMED'
  | 'ZIP_UNSUPPORTED'
  | 'ENTRY_NAME_UNSAFE'
  | 'ENTRY_CONFLICT'
  | 'ENTRY_CRC_MISMATCH'
  | 'ENTRY_SIZE_MISMATCH'
  | 'BUDGET_EXCEEDED'
  | 'TARGET_DIR_IN_USE'
  | 'WRITE_FAILED';

export class SnaploaderError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** The one line the user sees. */
  toLine(): string {
    return `${this.code}: ${this.message.replace(/\s*\n\s*/g, ' ')}`;
  }
}

/** A bad environment variable; the message names it. */
export class ConfigError extends SnaploaderError {
  constructor(message: string) {
    super('CONFIG_INVALID', message);
  }
}

/** S3 could not give us the object, or the bytes we asked for. */
export class SourceError extends SnaploaderError {}

/** The archive is not a zip we accept; the message names the entry when there is one. */
export class ArchiveError extends SnaploaderError {}

/** The archive does not fit the sandbox; the message names the budget and the knob. */
export class BudgetError extends SnaploaderError {
  constructor(message: string) {
    super('BUDGET_EXCEEDED', message);
  }
}

/** Writing the tree or a memfd failed. */
export class ExtractError extends SnaploaderError {}

/** The helper answered something the protocol does not allow, or refused a request. */
export class ProtocolError extends SnaploaderError {
  constructor(message: string) {
    super('HELPER_PROTOCOL', message);
  }
}

export function describe(err: unknown): string {
  if (err instanceof SnaploaderError) return err.toLine();
  const e = err as { code?: string; message?: string };
  return `INTERNAL: ${e?.message ?? String(err)}${e?.code ? ` (${e.code})` : ''}; ` +
    'this is a bug in snaploader: please report it with SNAPLOADER_DEBUG=1 output';
}
