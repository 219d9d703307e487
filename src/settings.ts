/**
 * The settings grammar (docs/architecture.md, "Settings grammar"), as the init program reads
 * it. wrapper.sh, bootstrap/snaploader-helper.c and preload-c/snaploader_preload.c implement
 * the same rules, so a value means the same thing in every component:
 *  - surrounding ASCII whitespace (space, \t, \n, \v, \f, \r) is ignored; a value that is empty
 *    after that is the same as an unset variable: the default;
 *  - words compare ASCII case-insensitively (no locale: "İ" is not "i");
 *  - a switch (1/true/yes/on, 0/false/no/off) that is not one of its words is taken as on, with
 *    a warning; an enumeration or a number that is not valid is a configuration error.
 */
import { ConfigError } from './errors';

type Env = Record<string, string | undefined>;

export const SWITCH_ON = ['1', 'true', 'yes', 'on'] as const;
export const SWITCH_OFF = ['0', 'false', 'no', 'off'] as const;

const EDGE_WHITESPACE = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;

/** The value with surrounding whitespace removed, or undefined when unset or blank. */
export function settingValue(env: Env, name: string): string | undefined {
  const v = env[name];
  if (v === undefined) return undefined;
  const trimmed = v.replace(EDGE_WHITESPACE, '');
  return trimmed === '' ? undefined : trimmed;
}

/** Lower-cases A-Z only: the comparison must not depend on Unicode case rules. */
function asciiLower(v: string): string {
  return v.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** The value in ASCII lower case (trimmed; undefined when unset or blank), to compare with words. */
export function settingWord(env: Env, name: string): string | undefined {
  const v = settingValue(env, name);
  return v === undefined ? undefined : asciiLower(v);
}

/** true or false for a switch word, undefined for anything else. */
export function switchWord(v: string): boolean | undefined {
  const w = asciiLower(v);
  if ((SWITCH_ON as readonly string[]).includes(w)) return true;
  if ((SWITCH_OFF as readonly string[]).includes(w)) return false;
  return undefined;
}

/** A boolean that changes what snaploader does: anything but a switch word is an error. */
export function parseBool(env: Env, name: string, fallback: boolean): boolean {
  const v = settingValue(env, name);
  if (v === undefined) return fallback;
  const b = switchWord(v);
  if (b === undefined) {
    throw new ConfigError(`${name}=${JSON.stringify(v)} is not valid: use ${SWITCH_ON.join(', ')} or ${SWITCH_OFF.join(', ')}`);
  }
  return b;
}

/** The one sentence every component prints for a diagnostic switch it does not recognise. */
export function unrecognisedSwitch(name: string, value: string): string {
  return `${name}=${JSON.stringify(value)} is not one of ${SWITCH_ON.join(', ')}, ${SWITCH_OFF.join(', ')}: taken as on`;
}

/**
 * A diagnostic switch (SNAPLOADER_DEBUG): off by default; a value that is not a switch word
 * must not stop the function, so it is taken as on, with a warning to print.
 */
export function parseDiagnosticSwitch(env: Env, name: string): { on: boolean; warning: string | null } {
  const v = settingValue(env, name);
  if (v === undefined) return { on: false, warning: null };
  const b = switchWord(v);
  return b === undefined ? { on: true, warning: unrecognisedSwitch(name, v) } : { on: b, warning: null };
}

/** One of `words` (given in lower case), compared ASCII case-insensitively; anything else is an error. */
export function parseChoice<T extends string>(env: Env, name: string, words: readonly T[], fallback: T): T {
  const v = settingValue(env, name);
  if (v === undefined) return fallback;
  const w = asciiLower(v);
  const found = words.find((x) => x === w);
  if (found === undefined) {
    throw new ConfigError(`${name}=${JSON.stringify(v)} is not valid: use ${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`);
  }
  return found;
}

/** A whole number: ASCII digits only (leading zeros allowed), from min to max. */
export function parseWholeNumber(env: Env, name: string, fallback: number, min: number, max: number): number {
  const v = settingValue(env, name);
  if (v === undefined) return fallback;
  if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new ConfigError(`${name}=${JSON.stringify(v)} must be a whole number from ${min} to ${max}`);
  }
  return Number(v);
}
