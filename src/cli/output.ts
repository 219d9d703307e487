/**
 * What a command prints: a text report (stdout), or one JSON object with --json; progress
 * bars (cli-progress) only when stderr is a terminal and not --quiet, so scripts and CI logs
 * see none of it.
 */
import { SingleBar } from 'cli-progress';
import { formatBytes } from '../log';

export class Output {
  constructor(
    readonly json: boolean,
    readonly quiet: boolean,
    private readonly stdout: NodeJS.WritableStream = process.stdout,
    private readonly stderr: NodeJS.WriteStream = process.stderr,
  ) {}

  /** A line of the text report (nothing with --json or --quiet). */
  line(text = ''): void {
    if (!this.json && !this.quiet) this.stdout.write(`${text}\n`);
  }

  /** The --json result (nothing without --json). */
  result(value: unknown): void {
    if (this.json) this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** A warning: always on stderr, even with --json. */
  warn(text: string): void {
    this.stderr.write(`snaploader: warning: ${text}\n`);
  }

  /** A byte-counting progress bar, or a no-op one when stderr is not a terminal. */
  progress(label: string, total: number): Progress {
    if (this.quiet || !this.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
    const bar = new SingleBar({
      format: `${label} [{bar}] {percentage}% {done} of {all}`,
      hideCursor: true,
      clearOnComplete: true,
      stream: this.stderr,
    });
    bar.start(total, 0, { done: formatBytes(0), all: formatBytes(total) });
    return {
      update: (value: number) => bar.update(value, { done: formatBytes(value), all: formatBytes(total) }),
      stop: () => bar.stop(),
    };
  }
}

export interface Progress {
  update(value: number): void;
  stop(): void;
}

/** Right-aligned columns for the text report. */
export function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd());
}
