/**
 * stderr logging: one summary line always, everything else only with SNAPLOADER_DEBUG. Text
 * by default; Lambda's JSON lines with AWS_LAMBDA_LOG_FORMAT=JSON (src/log-format.ts).
 */
import { jsonLine, type Level, type LogFormat, readLogFormat, shows } from './log-format';

let debugEnabled = false;
let format: LogFormat = readLogFormat(process.env);

export function setDebug(on: boolean): void {
  debugEnabled = on;
}

export function isDebug(): boolean {
  return debugEnabled;
}

/** Re-reads AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL (tests change them). */
export function setLogFormat(f: LogFormat): void {
  format = f;
}

function write(level: Level, text: string, message: string, fields?: Record<string, string | number>): void {
  if (!format.json) {
    process.stderr.write(text);
  } else if (shows(format, level)) {
    process.stderr.write(jsonLine(level, message, fields));
  }
}

/** Debug lines carry the milliseconds since the process started, to see where init time goes. */
export function debug(message: string | (() => string)): void {
  if (!debugEnabled) return;
  const ms = Math.round(performance.now());
  const m = typeof message === 'function' ? message() : message;
  write('DEBUG', `snaploader: debug: +${ms}ms ${m}\n`, m, { elapsedMs: ms });
}

/** A setting read with a warning: shown, like debug lines, only with SNAPLOADER_DEBUG (as WARN in JSON). */
export function warn(message: string): void {
  if (!debugEnabled) return;
  const ms = Math.round(performance.now());
  write('WARN', `snaploader: debug: +${ms}ms warning: ${message}\n`, message, { elapsedMs: ms });
}

export function info(message: string, fields?: Record<string, string | number>): void {
  write('INFO', `snaploader: ${message}\n`, message, fields);
}

/** A failure line `CODE: message`, when the helper cannot print it for us. */
export function error(line: string): void {
  const code = /^([A-Z][A-Z0-9_]*): /.exec(line);
  write('ERROR', `snaploader: ${line}\n`, line, code ? { errorCode: code[1] } : {});
}

/** A line that is a JSON record of its own (an embedded-metric-format record), in any format. */
export function record(value: object): void {
  process.stderr.write(JSON.stringify(value) + '\n');
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
