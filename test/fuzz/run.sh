#!/usr/bin/env bash
# Fuzzes the C parts with libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer:
#
#   test/fuzz/run.sh <seconds per target>
#
# Builds every target (test/fuzz/*.c; each includes the C file it tests, compiled with
# -DSNAPLOADER_FUZZ) into build/fuzz/bin/, writes the seed corpora (make-seeds.ts) into
# build/fuzz/seeds/, and runs the targets one after another, each for the given time, with
# build/fuzz/corpus/<target>/ as the corpus that grows from run to run. Prints one line per
# target:
#   fuzz <target>: <N> executions, 0 crashes
# and exits 1 if any target crashed (the input is kept in build/fuzz/artifacts/<target>/;
# replay it with build/fuzz/bin/<target> <file>), 2 on a usage or build problem.
#
# Needs clang and its libFuzzer runtime (Debian: clang, libclang-rt-14-dev), node and the
# project's node_modules (esbuild).
set -euo pipefail

usage() {
  printf 'usage: %s <seconds per target>\n' "$0" >&2
  exit 2
}
[[ $# -eq 1 && "$1" =~ ^[1-9][0-9]*$ ]] || usage
seconds=$1

root=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
out="${root}/build/fuzz"
fuzz="${root}/test/fuzz"

cc="${CLANG:-}"
if [[ -z "$cc" ]]; then
  for c in clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
    if command -v "$c" >/dev/null; then
      cc="$c"
      break
    fi
  done
fi
if [[ -z "$cc" ]]; then
  printf 'fuzz: no clang found: install clang and libclang-rt-14-dev (Debian), or set CLANG\n' >&2
  exit 2
fi

# target: max_len dictionary
declare -A max_len=([preload_map]=20000 [preload_lookup]=12000 [helper_protocol]=24000 [helper_fields]=4096)
declare -A dict=([preload_map]=preload.dict [preload_lookup]=preload.dict [helper_protocol]=helper_protocol.dict [helper_fields]=helper_protocol.dict)
targets=(preload_map preload_lookup helper_protocol helper_fields)

mkdir -p "${out}/bin" "${out}/logs"
for t in "${targets[@]}"; do
  if ! "$cc" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -DSNAPLOADER_FUZZ -Wall -Wextra -Werror -Wno-unused-function \
    -o "${out}/bin/${t}" "${fuzz}/${t}.c" -lpthread 2>"${out}/logs/${t}.build.log"; then
    cat "${out}/logs/${t}.build.log" >&2
    printf 'fuzz: cannot build %s with %s (is the libFuzzer runtime, libclang-rt-*-dev, installed?)\n' "$t" "$cc" >&2
    exit 2
  fi
done

"${root}/node_modules/.bin/esbuild" "${fuzz}/make-seeds.ts" --bundle --platform=node --target=node20 \
  --log-level=warning --outfile="${out}/make-seeds.js"
node "${out}/make-seeds.js" "${out}/seeds"

crashed=0
for t in "${targets[@]}"; do
  mkdir -p "${out}/corpus/${t}" "${out}/artifacts/${t}"
  log="${out}/logs/${t}.log"
  status=0
  # Absolute paths only: the preload targets run in "/".
  UBSAN_OPTIONS=print_stacktrace=1 "${out}/bin/${t}" -max_total_time="$seconds" -print_final_stats=1 \
    -max_len="${max_len[$t]}" -timeout=20 -rss_limit_mb=2048 -dict="${fuzz}/${dict[$t]}" \
    -artifact_prefix="${out}/artifacts/${t}/" "${out}/corpus/${t}" "${out}/seeds/${t}" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  if [[ -z "$execs" ]]; then # a crash may end the run before the final stats
    execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
  fi
  if [[ $status -eq 0 ]] && grep -q '^Done [0-9]* runs' "$log"; then
    printf 'fuzz %s: %s executions, 0 crashes\n' "$t" "${execs:-0}"
  else
    crashed=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    printf 'fuzz %s: %s executions, 1 crash (exit %s): %s\n' "$t" "${execs:-0}" "$status" "${artifact:-see ${log}}"
    grep -m 12 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|check failed:|SUMMARY:| in [A-Za-z_]+ .*(test/fuzz|preload-c|bootstrap)/' "$log" | sed 's/^/  /' || true
  fi
done
exit "$crashed"
