/**
 * A short fuzzing run of the C parts (test/fuzz/run.sh: libFuzzer with AddressSanitizer and
 * UndefinedBehaviorSanitizer, 10 s per target). `make fuzz` runs the same targets for longer.
 * Needs clang and libclang-rt-14-dev (Debian).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../support/paths';

const TARGETS = ['preload_map', 'preload_lookup', 'helper_protocol', 'helper_fields'];
const SECONDS = 10;

test(`every fuzz target runs ${SECONDS} s without a crash`, () => {
  const r = spawnSync(join(ROOT, 'test', 'fuzz', 'run.sh'), [String(SECONDS)], {
    encoding: 'utf8',
    // Builds, seeds, then the targets one after another: a generous hang guard.
    timeout: (60 + TARGETS.length * SECONDS * 4) * 1000,
  });
  if (r.error) throw r.error;
  const report = `exit ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('fuzz '));
  expect([lines.map((l) => l.split(':')[0]), report]).toEqual([TARGETS.map((t) => `fuzz ${t}`), report]);
  for (const line of lines) {
    const m = /^fuzz (\w+): (\d+) executions, 0 crashes$/.exec(line);
    expect([line, m !== null]).toEqual([line, true]);
    // Far below what any target manages on a slow, busy machine; a harness that stops
    // early or rejects every input would not reach it.
    expect([line, Number(m![2]) >= 1000]).toEqual([line, true]);
  }
  expect([r.status, report]).toEqual([0, report]);
}, 600_000);
