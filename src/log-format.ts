/**
 * Lambda's log formats for every line snaploader writes (docs/architecture.md, "Logs"):
 * AWS_LAMBDA_LOG_FORMAT=JSON (advanced logging controls) makes each line one JSON object with
 * Lambda's fields (timestamp, level, message) and ours (logger, component, errorCode);
 * AWS_LAMBDA_LOG_LEVEL then drops the lines below it. Any other format is today's text, unfiltered.
 * wrapper.sh, the helper and the preload library implement the same rules.
 */
import { settingWord } from './settings';

type Env = Record<string, string | undefined>;

export type Level = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** Lambda's application log levels, lowest first; ours are four of them. */
const LAMBDA_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
const RANK: Record<Level, number> = { DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };

export interface LogFormat {
  json: boolean;
  /** Lines of a lower rank are dropped (0: none is). */
  minRank: number;
}

export const TEXT: LogFormat = { json: false, minRank: 0 };

/** JSON only for the word `json` (any case); the level only counts with JSON, as in Lambda; an unknown level filters nothing. */
export function readLogFormat(env: Env): LogFormat {
  if (settingWord(env, 'AWS_LAMBDA_LOG_FORMAT') !== 'json') return TEXT;
  const level = settingWord(env, 'AWS_LAMBDA_LOG_LEVEL');
  const rank = level === undefined ? -1 : (LAMBDA_LEVELS as readonly string[]).indexOf(level);
  return { json: true, minRank: Math.max(0, rank) };
}

export function shows(format: LogFormat, level: Level): boolean {
  return RANK[level] >= format.minRank;
}

/** One JSON line (with its newline). JSON.stringify escapes quotes, backslashes, control and lone surrogate characters. */
export function jsonLine(level: Level, message: string, fields: Record<string, string | number> = {}, now = new Date()): string {
  return JSON.stringify({ timestamp: now.toISOString(), level, message, logger: 'snaploader', component: 'init', ...fields }) + '\n';
}
