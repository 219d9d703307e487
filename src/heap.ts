/**
 * Keeps V8's young generation at its initial size. The init program allocates few objects
 * but streams hundreds of MB through short-lived buffers; left alone, V8 doubles the young
 * generation's semi-spaces up to 16 MiB each (~45 MB of heap for ~12 MB of live objects),
 * and that memory is the function's. Set at run time, not as a command-line flag: any V8
 * flag on the command line makes Node drop its precompiled built-in code (~18 ms per start).
 * For the same reason it is set after the program's modules (and the built-ins they need)
 * are loaded. V8 flags are part of a code cache's check: src/code-cache-maker.mjs puts this
 * one back to its default before writing the init program's cache.
 */
import { setFlagsFromString } from 'node:v8';

export function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}
