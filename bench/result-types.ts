/**
 * What a benchmark run records (results.json): written by the harness (main.ts), read by the
 * report (report.ts), which therefore need not import each other.
 */
import type { Corpus } from './corpus';
import type { MethodId, RunResult } from './methods';
import type { Profile } from './servers';

export interface CorpusResult {
  corpus: Corpus;
  profile: Profile['id'];
  runs: Partial<Record<MethodId, RunResult[]>>;
}

export interface Results {
  quick: boolean;
  /** Set when the inflate-only runs were measured in a separate pass after the run, and why. */
  inflateRemeasured?: string;
  date: string;
  commit: string;
  /** sha256 (first 12 hex digits) of the init program measured (init-main.js). */
  initSha: string;
  machine: Record<string, string | number>;
  settings: Record<string, string | number>;
  profiles: Profile[];
  corpora: CorpusResult[];
  /** Loopback with the measured process pinned to CPU 0 and the S3 server to CPU 1 (bench/corpus-runs.ts). */
  oneCore?: CorpusResult[];
  overhead?: Record<string, { plainMs: number[]; wrapperMs: number[]; nodeMs: number[]; errors: string[] }>;
  preload?: { mappings: number; calls: number; unmapped: PreloadSample; lookalike: PreloadSample; mappedNs: number[] };
  quietWaits: { before: string; waitedMs: number; busy: number }[];
  wallMinutes: number;
}

/**
 * ns per open+close of one path, one entry per run. `probe bench` times, in one process, the
 * `open` it links (the library's when preloaded) and libc's own: `with*` come from processes
 * with the library, `without*` from processes without it, where the two must agree.
 */
export interface PreloadSample {
  withNs: number[];
  withLibcNs: number[];
  withoutNs: number[];
  withoutLibcNs: number[];
}
