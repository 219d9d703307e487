/**
 * The descriptive sections of BENCHMARKS.md: corpora, methods (the runner, the write-only
 * floor, the limit and the 1-core rule), network profiles, and how to run the benchmark.
 */
import { corpusTable } from './report-tables';
import type { Results } from './result-types';

export function methodsSection(r: Results, zlibNote: string, waits: string, bigNote: string): string {
  const mc = r.machine;
  const st = r.settings;
  return `## Corpora

${corpusTable(r)}

Sizes of the files over 100 MB in MiB. ${bigNote} The rest: shared libraries of 1–100 MB
from the system library directory, and small files (under 1 MiB) spread evenly over the
system Python's packages and standard library (\`.py\`, \`.pyc\`, extension modules, data) and
the small shared libraries; a corpus that needs more small or medium files than the machine has
uses them again under \`copyN/\`. The stack corpus has the shape of an ML stack (60% of the
bytes in a few files over 100 MB, a few dozen of 1–100 MB, ~3,000 in all); the size series
scales the same shape to 0.25, 0.5, 1 and 2 GiB. The PyPI stack is a real ML stack from PyPI
(\`bench/pypi-corpus.ts\`): scipy, pandas, scikit-learn, onnxruntime, pyarrow and every
dependency, the CPython 3.11 manylinux2014 x86_64 wheels pinned with their hashes in
\`bench/pypi-requirements.txt\`, installed with \`pip install --target python\` (a Lambda layer's
layout, \`python/\` at the archive root); in quick mode only six and python-dateutil
(\`bench/pypi-requirements-quick.txt\`). The wheels are cached under
\`\${SNAPLOADER_CACHE:-~/.cache/snaploader}/bench-pypi-<hash>/\`. Zipped with Info-ZIP \`zip -r -X\` (deflate
level 6, its default; \`-0\` for stored). Built by \`bench/corpus.ts\` and cached under
\`.cache/bench/\` by recipe version, so reruns on this machine use the same archives.

## Methods

Each run starts a fresh process and ends when it exits; methods run one at a time, and every
repetition runs all of them in turn (snaploader, seed, download + unzip, raw GET per profile,
then inflate-only and the write-only floor, then the 1-core runs), so drift touches all alike.
Every method runs under \`bench/rusage-run.c\` (built with the project's zig cc), which forks
and execs it, times it from before the fork to after \`wait4\`, and reports \`wait4\`'s resource
usage: user and system CPU time, minor and major page faults, voluntary and involuntary context
switches of the process and every descendant it (or they) reaped; the wrapper's helper reaps the
init program, so snaploader's figures cover the wrapper, the helper and the init program. The
process's stdin, stdout and stderr are untouched; the runner reports its child's PID first, so
the memory sampler follows the right process. Before and after each snaploader, seed and raw
GET run the harness reads the S3 server's and the shaping proxy's CPU time (utime + stime in
\`/proc/<pid>/stat\`, every thread) and records what they used during the run. Between runs \`sync\` is run (not timed), and the
previous run's files are moved aside and truncated to nothing, not deleted (they are deleted
with the scratch directory at the end). This \`/tmp\` is ext4 without a journal, which skips
inodes freed in the last 60 s when it allocates new ones: deleting a run's thousands of files
right before the next run made that run's file creation walk past them (~0.5 s of 3 s on the
stack corpus, for snaploader and unzip alike), which a cold Lambda sandbox, with its fresh
\`/tmp\`, never pays; truncated, they hold neither disk nor page cache that would squeeze the
memory of the methods after them. The S3 server is s3rver, except that it answers a suffix range
(\`bytes=-N\`) with the object's last N bytes, as S3 does (\`bench/s3-server.mjs\`; s3rver alone
answers it from offset 0, which cost each snaploader run a second GET for the archive's tail).
The object is in the S3 server's page cache.

- **snaploader**: \`wrapper.sh /bin/true\` from a private copy of \`build/x86_64/opt\` (what \`make build-x86_64\` leaves) with \`SNAPLOADER_BUCKET\`/\`KEY\`,
  \`AWS_ENDPOINT_URL_S3\` pointing at the profile's endpoint, a fresh \`SNAPLOADER_TARGET_DIR\`
  per run, \`AWS_LAMBDA_FUNCTION_MEMORY_SIZE=10240\` (so the memory budget does not bind),
  \`SNAPLOADER_TMP_BUDGET=4G\`, \`SNAPLOADER_TIMEOUT=120\` (an on-demand init's 9 s would cut the
  large corpora short), every other setting at its default (here ${st.concurrency} GETs of ${st.rangeMiB} MiB in
  flight, memfds for files of 1 MiB or more, at most 512). A function of 10,240 MB has 6 vCPUs
  and the engine sizes its connections and threads for them, although this machine has ${mc.cores} cores. The whole real path: bash wrapper,
  static helper, Node init program, memfds and the tree, then the helper execs \`/bin/true\`.
  The run must report every file loaded. Memory: every ${st.sampleMs} ms the harness reads the helper's
  \`VmRSS\` and its memfd descriptors' sizes, and the init program's \`VmHWM\` (the last sample
  before it exits: at most ${st.sampleMs} ms of growth can be missed).
- **seed** (\`bench/seed.py\`), what the prior tool does: one GET of the whole object into memory
  (Python \`urllib\`, unsigned: the local S3 allows anonymous reads), \`zipfile\` over it, every
  entry read into a dict, every \`.so\`/\`.so.N\` entry copied into a memfd. Memory is its
  \`ru_maxrss\` plus the memfd bytes.
- **download + unzip** (\`bench/download_unzip.py\`): one GET streamed to a file in \`/tmp\`, then
  \`unzip -q\` into a directory.
- **raw parallel GET** (\`bench/raw-get.mjs\`): the whole object in ${st.rangeMiB} MiB ranged GETs, ${st.concurrency} in
  flight (what the engine's own configuration code picks for the runs above), each socket
  reading into one reused buffer and bodies discarded: what the network alone allows, with the
  least CPU a client can spend on it.
- **inflate only** (\`bench/inflate-only.ts\`): the CPU time of inflating every entry with the
  engine's own inflater (libdeflate, through the layer's native extractor, one entry at a time
  into fresh memory, which is then written to \`/dev/null\`) from a local copy, divided by the
  ${mc.cores} cores: what the CPU alone allows, faulting in the memory the output needs included
  (the engine has to put every byte in memory too).
  Zero for the stored corpus. (Node's zlib, which the engine used before, needs ${zlibNote}.)
  Its kernel numbers (faults, user, sys) are the whole process's: reading the zip and the
  zlib comparison pass included.
- **write-only floor** (\`bench/write-floor.c\`, zig cc): what putting the unpacked bytes in place
  costs with no download and no inflating. A manifest of the archive's files, placed by the
  engine's own code (its central-directory reader, \`src/plan.ts\` and \`src/config.ts\` for the
  environment of the snaploader runs: memfds for files of 1 MiB or more, largest first, at most
  512), drives it: each memfd is made with \`memfd_create\` and sized with \`ftruncate\` first, as
  the engine does, each other file is created in a fresh tree on the same filesystem as the
  engine's (directories as needed), every byte is written with \`pwrite\` from one reused buffer
  filled with non-zero bytes once, and each file is closed after its last byte (so the memfds'
  pages are freed within the run, which the engine leaves to the function's exit). Its figure is
  its CPU time (user + system), measured by the runner; its tree is discarded like the others'.
- **limit**: max(raw parallel GET, (inflate-only CPU + the S3 server's and the shaping proxy's
  CPU during snaploader's run, the median over its runs + write-only floor CPU) ÷ ${mc.cores} cores):
  the network, or all the CPU work this machine has to do for a load. Beside it the former
  inflate-only limit, max(raw parallel GET, inflate-only CPU ÷ ${mc.cores} cores).
- **1 core** (loopback, every deflated corpus, and the stored stack): snaploader with
  \`AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769\` (a function below 1,769 MB has one vCPU; the engine
  sizes its connections and threads from it), the seed, the raw GET and the write-only floor
  (with the engine's placement for that memory size) pinned to CPU 0 by the runner, with the S3
  server pinned to CPU 1 (\`taskset -a -p -c 1\`, restored after), as S3 runs elsewhere on Lambda.
  Limit at 1 core: max(raw parallel GET at 1 core, inflate-only CPU + write-only floor CPU). On
  the stored stack only snaploader and the seed run.

## Network profiles

- **loopback**: s3rver (the S3-compatible server the tests use) on 127.0.0.1, no shaping.
- **S3-like**: \`bench/shaping-proxy.mjs\`, a TCP proxy in front of the same server, reached
  through \`AWS_ENDPOINT_URL_S3\`. It forwards bytes unchanged both ways; per TCP connection it
  holds the first byte of every response until ${st.ttfbMs} ms after the request started (S3's
  published first-byte latency; a new request is recognised as the client speaking after the
  previous response) and sends the server's bytes through a token bucket of ${st.rateMBs} MB/s
  (S3's published per-connection throughput), emptied at the start of every response so an idle
  connection banks no head start. More connections get more bandwidth, as on S3, so the
single-GET methods (seed, download + unzip) get ${st.rateMBs} MB/s and the engine and the raw GET up to
${st.concurrency} × ${st.rateMBs} MB/s. The first-byte delay applies to every request (S3's latency is per request), which
is stricter on methods that make many requests than delaying only a connection's first response.
${waits}
## Running it

- \`make bench\` (\`node bench/run.mjs\` after \`make build-x86_64\`): everything, ~35 minutes on
  2 cores, plus ~5 minutes the first time to build the corpora and download the PyPI stack's wheels (cached in \`.cache/bench/\`; the
  local S3's objects too). Rewrites this file, \`bench/results/results.json\` (every run's numbers)
  and \`bench/results/scaling.svg\`.
- \`BENCH_QUICK=1 make bench\`: corpora of 32–128 MiB and the PyPI stack's six + python-dateutil subset, one run, results in \`.cache/bench/quick/\`
  (this file is left alone).
- \`BENCH_ONLY=stack,pypi,series,overhead,preload\` (any subset; \`stack\` includes the PyPI stack, \`pypi\` is it alone; results in
  \`.cache/bench/partial/\`, this file is left alone), \`BENCH_RUNS=N\` (also
  \`BENCH_RUNS_1G\`, \`BENCH_RUNS_2G\`), \`BENCH_OPT=<dir>\` (another build of the layer's \`/opt\`;
  the harness measures a private copy of it, so a rebuild during a run changes nothing),
  \`BENCH_RENDER=1\` (rewrite this file and the plot from the last results.json).
- The proxy also works alone: \`node bench/shaping-proxy.mjs --upstream 127.0.0.1:<port>\`
  [\`--ttfb-ms 20\`] [\`--rate-mbs 90\`] [\`--ttfb-per request|connection\`] prints \`{"port":N}\`.
`;
}
