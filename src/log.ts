/** stderr logging: one summary line always, everything else only with SNAPLOADER_DEBUG. */
let debugEnabled = false;

export function setDebug(on: boolean): void {
  debugEnabled = on;
}

export function isDebug(): boolean {
  return debugEnabled;
}

/** Debug lines carry the milliseconds since the process started, to see where init time goes. */
export function debug(message: string | (() => string)): void {
  if (!debugEnabled) return;
  const ms = Math.round(performance.now());
  process.stderr.write(`snaploader: debug: +${ms}ms ${typeof message === 'function' ? message() : message}\n`);
}

export function info(message: string): void {
  process.stderr.write(`snaploader: ${message}\n`);
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
