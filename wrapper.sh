#!/bin/bash
# snaploader exec wrapper: AWS_LAMBDA_EXEC_WRAPPER=/opt/snaploader/wrapper.sh
#
# Lambda runs it as `wrapper.sh <runtime argv...>`. With no archive configured it only adds the
# preload library to LD_PRELOAD (POSIX shared memory without /dev/shm; SNAPLOADER_SHM=off: not
# even that) and execs the runtime. Otherwise it prepares the runtime's environment
# (LD_PRELOAD), finds a Node.js for the init program and hands over to snaploader-helper,
# which keeps this PID, loads the archive into memfds and /tmp, and execs the runtime. Values
# the user set always win.
set -euo pipefail

# Settings grammar (docs/architecture.md), the same in every component: surrounding ASCII
# whitespace is ignored, blank is the default, words compare ASCII case-insensitively.
# setting_value NAME: REPLY = the value, trimmed ("" when unset or blank).
setting_value() {
  local v="${!1-}" ws=$' \t\n\v\f\r'
  v="${v#"${v%%[!"$ws"]*}"}"
  REPLY="${v%"${v##*[!"$ws"]}"}"
}

# setting_word NAME: REPLY = the trimmed value in lower case (A-Z only, whatever the locale).
setting_word() {
  local LC_ALL=C
  setting_value "$1"
  REPLY="${REPLY,,}"
}

# setting_switch NAME: REPLY = on, off, or unrecognised (a diagnostic switch: taken as on).
setting_switch() {
  setting_word "$1"
  case "$REPLY" in
    1 | true | yes | on) REPLY=on ;;
    "" | 0 | false | no | off) REPLY=off ;;
    *) REPLY=unrecognised ;;
  esac
}

setting_switch SNAPLOADER_DEBUG
debug=$REPLY

# Lambda's log formats (docs/architecture.md, "Logs"): with AWS_LAMBDA_LOG_FORMAT=JSON each line
# is one JSON object, and lines below AWS_LAMBDA_LOG_LEVEL are dropped; otherwise text, as ever.
log_min=0 log_second="" log_stamp=""
setting_word AWS_LAMBDA_LOG_FORMAT
if [[ "$REPLY" == json ]]; then
  setting_word AWS_LAMBDA_LOG_LEVEL
  case "$REPLY" in
    warn) log_min=3 ;;
    error | fatal) log_min=4 ;;
    info) log_min=2 ;;
    *) log_min=1 ;;
  esac
fi

# json_string TEXT: REPLY = TEXT as JSON string content: quotes, backslashes and control bytes
# escaped, bytes that are not UTF-8 as U+FFFD. Byte by byte, only when the line needs it.
json_string() {
  local LC_ALL=C s="$1" out="" c i n b len k ok
  if [[ "$s" != *[!\ -~]* && "$s" != *[\"\\]* ]]; then
    REPLY="$s"
    return
  fi
  n=${#s}
  for ((i = 0; i < n; i++)); do
    c="${s:i:1}"
    printf -v b '%d' "'$c"
    ((b < 0)) && ((b += 256))
    if ((b == 34 || b == 92)); then
      out+="\\$c"
    elif ((b < 32 || b == 127)); then
      printf -v c '\\u%04x' "$b"
      out+="$c"
    elif ((b < 128)); then
      out+="$c"
    else
      len=0
      ((b >= 0xc2 && b <= 0xdf)) && len=2
      ((b >= 0xe0 && b <= 0xef)) && len=3
      ((b >= 0xf0 && b <= 0xf4)) && len=4
      ok=$((len > 0 && i + len <= n))
      for ((k = 1; ok && k < len; k++)); do
        printf -v c '%d' "'${s:i+k:1}"
        ((c < 0)) && ((c += 256))
        if ((k == 1)); then
          ((b == 0xe0 && c < 0xa0 || b == 0xed && c > 0x9f || b == 0xf0 && c < 0x90 || b == 0xf4 && c > 0x8f)) && ok=0
        fi
        ((c < 0x80 || c > 0xbf)) && ok=0
      done
      if ((ok)); then
        out+="${s:i:len}"
        ((i += len - 1))
      else
        out+='\ufffd'
      fi
    fi
  done
  REPLY="$out"
}

# log_line LEVEL TEXT_PREFIX ERROR_CODE MESSAGE: one line on stderr, text or JSON.
log_line() {
  local level="$1" prefix="$2" code="$3" message="$4" rank ts now fields
  if ((log_min == 0)); then
    printf '%s%s\n' "$prefix" "$message" >&2
    return
  fi
  case "$level" in DEBUG) rank=1 ;; INFO) rank=2 ;; WARN) rank=3 ;; *) rank=4 ;; esac
  ((rank >= log_min)) || return 0
  now="${EPOCHREALTIME-}"
  now="${now//[!0-9]/}"
  if ((${#now} > 6)); then
    # The date and time are formatted once per second: a TZ change costs a tzset each time.
    if [[ "${now:0:${#now}-6}" != "$log_second" ]]; then
      log_second="${now:0:${#now}-6}"
      TZ=UTC0 printf -v log_stamp '%(%Y-%m-%dT%H:%M:%S)T' "$log_second"
    fi
    ts="${log_stamp}.${now:${#now}-6:3}Z"
  else
    TZ=UTC0 printf -v ts '%(%Y-%m-%dT%H:%M:%S)T.000Z' -1
  fi
  fields=""
  [[ -z "$code" ]] || fields=",\"errorCode\":\"${code}\""
  json_string "$message"
  printf '{"timestamp":"%s","level":"%s","message":"%s","logger":"snaploader","component":"wrapper"%s}\n' \
    "$ts" "$level" "$REPLY" "$fields" >&2
}

log_debug() {
  if [[ "$debug" != off ]]; then
    log_line DEBUG '[snaploader:wrapper] ' "" "$*"
  fi
}

# Like the helper: exit 127, or with SNAPLOADER_ON_ERROR=continue start the runtime untouched.
# fail CODE MESSAGE
fail() {
  if [[ "$on_error" == continue ]]; then
    log_line WARN 'snaploader: warning: ' "$1" "$2; starting the runtime without the archive (SNAPLOADER_ON_ERROR=continue)"
    exec "${runtime[@]}"
  fi
  log_line ERROR 'snaploader: ' "$1" "$2"
  exit 127
}

if [[ $# -eq 0 ]]; then
  printf 'usage: %s <runtime> [args...]\n(set AWS_LAMBDA_EXEC_WRAPPER to this script; Lambda supplies the arguments)\n' "$0" >&2
  exit 2
fi

runtime=("$@")

if [[ "$debug" == unrecognised ]]; then
  setting_value SNAPLOADER_DEBUG
  log_line WARN '[snaploader:wrapper] warning: ' "" "SNAPLOADER_DEBUG=\"${REPLY}\" is not one of 1, true, yes, on, 0, false, no, off: taken as on"
fi

# SNAPLOADER_SHM, a boolean (on by default): where /dev/shm is unusable the preload library
# keeps POSIX shared memory and semaphores in SNAPLOADER_SHM_DIR, and the runtime's own process
# (this PID) empties that directory of what dead processes left there. A value that is not a
# boolean stops here, as any setting that is not valid does.
setting_word SNAPLOADER_SHM
case "$REPLY" in
  "" | 1 | true | yes | on) shm=on ;;
  0 | false | no | off) shm=off ;;
  *)
    setting_value SNAPLOADER_SHM
    log_line ERROR 'snaploader: ' CONFIG_INVALID "SNAPLOADER_SHM=\"${REPLY}\" is not valid: use 1, true, yes, on, 0, false, no or off"
    exit 1
    ;;
esac

configured=""
for name in SNAPLOADER_SOURCE SNAPLOADER_BUCKET SNAPLOADER_KEY; do
  setting_value "$name"
  configured+="$REPLY"
done
# No archive: with SNAPLOADER_SHM on, only the preload library is added (no helper, no Node).
if [[ -z "$configured" ]]; then
  if [[ "$shm" == off ]]; then
    log_debug "no archive and SNAPLOADER_SHM off: starting the runtime unchanged"
    exec "$@"
  fi
  shm_lib="${BASH_SOURCE[0]}"
  if [[ -L "$shm_lib" ]]; then
    shm_lib=$(readlink -f -- "$shm_lib")
  fi
  [[ "$shm_lib" == /* ]] || shm_lib="${PWD}/${shm_lib}"
  shm_lib="${shm_lib%/*}/lib/libsnaploader.so"
  if [[ ! -e "$shm_lib" ]]; then
    log_line WARN 'snaploader: warning: ' LAYER_INCOMPLETE "${shm_lib} is missing: the snaploader layer is incomplete; starting the runtime without POSIX shared memory support"
    exec "$@"
  fi
  case ":${LD_PRELOAD:-}:" in
    *":${shm_lib}:"*) ;;
    *) export LD_PRELOAD="${shm_lib}${LD_PRELOAD:+:${LD_PRELOAD}}" ;;
  esac
  export SNAPLOADER_SHM_SWEEP=$$
  log_debug "no archive: LD_PRELOAD=${LD_PRELOAD} for POSIX shared memory; exec $*"
  exec "$@"
fi
if [[ "$shm" == on ]]; then
  export SNAPLOADER_SHM_SWEEP=$$
fi

# An enumeration: a value that is not one of its words stops the init, whatever else happens.
setting_word SNAPLOADER_ON_ERROR
case "$REPLY" in
  "" | fail) on_error="fail" ;;
  continue) on_error="continue" ;;
  *)
    setting_value SNAPLOADER_ON_ERROR
    log_line ERROR 'snaploader: ' CONFIG_INVALID "SNAPLOADER_ON_ERROR=\"${REPLY}\" is not valid: use fail or continue"
    exit 1
    ;;
esac
log_debug "settings: on error ${on_error}; debug on"

# Where the layer was unpacked (/opt/snaploader in Lambda). Shell builtins only, so a PATH
# without coreutils still works; a symlinked wrapper is followed with readlink.
self="${BASH_SOURCE[0]}"
if [[ -L "$self" ]]; then
  self=$(readlink -f -- "$self")
fi
[[ "$self" == */* ]] || self="./${self}"
layer_dir=$(cd -P -- "${self%/*}" && pwd -P)
helper="${layer_dir}/bin/snaploader-helper"
preload="${layer_dir}/lib/libsnaploader.so"
init_js="${layer_dir}/init.js"

for f in "$helper" "$preload" "$init_js" "${layer_dir}/init-main.js"; do
  [[ -e "$f" ]] || fail LAYER_INCOMPLETE "${f} is missing: the snaploader layer is incomplete; re-attach it (and check it matches the function's architecture)"
done

# Node.js for the init program: SNAPLOADER_NODE, then the snaploader Node layer, then the
# runtime's own (Node.js runtimes), then PATH.
node="${SNAPLOADER_NODE:-}"
if [[ -n "$node" ]]; then
  [[ -x "$node" ]] || fail CONFIG_INVALID "SNAPLOADER_NODE=${node} is not an executable file"
else
  for candidate in "${layer_dir}/node/bin/node" /var/lang/bin/node; do
    if [[ -x "$candidate" ]]; then
      node="$candidate"
      break
    fi
  done
  if [[ -z "$node" ]]; then
    node=$(command -v node || true)
  fi
  [[ -n "$node" ]] || fail LAYER_INCOMPLETE "no Node.js found for the init program: attach the snaploader Node layer (snaploader-node-<arch>.zip) or set SNAPLOADER_NODE"
fi

# The preload library goes first; anything the user preloads stays, once.
case ":${LD_PRELOAD:-}:" in
  *":${preload}:"*) ;;
  *) export LD_PRELOAD="${preload}${LD_PRELOAD:+:${LD_PRELOAD}}" ;;
esac

# A Node.js runtime imports the layer's module hooks first, so that `import` finds the
# archive's packages (layer/nodejs/register.mjs; it does nothing without them). The user's
# NODE_OPTIONS stay, after ours.
if [[ "${runtime[0]##*/}" == node* ]]; then
  hooks="${layer_dir}/nodejs/register.mjs"
  case " ${NODE_OPTIONS:-} " in
    *" --import=\"${hooks}\" "*) ;;
    *) export NODE_OPTIONS="--import=\"${hooks}\"${NODE_OPTIONS:+ ${NODE_OPTIONS}}" ;;
  esac
  log_debug "NODE_OPTIONS=${NODE_OPTIONS}"
fi

# A JVM (Lambda's Java runtimes start /var/lang/bin/java): the layer's agent puts the archive's
# jars on the class path and registers the SnapStart check. It goes first in JAVA_TOOL_OPTIONS;
# the user's options stay after it.
if [[ "${runtime[0]##*/}" == java ]]; then
  agent="${layer_dir}/java/snaploader-agent.jar"
  [[ -e "$agent" ]] || fail LAYER_INCOMPLETE "${agent} is missing: the snaploader layer is incomplete; re-attach it"
  case " ${JAVA_TOOL_OPTIONS:-} " in
    *" -javaagent:${agent} "*) ;;
    *) export JAVA_TOOL_OPTIONS="-javaagent:${agent}${JAVA_TOOL_OPTIONS:+ ${JAVA_TOOL_OPTIONS}}" ;;
  esac
  log_debug "JAVA_TOOL_OPTIONS=${JAVA_TOOL_OPTIONS}"
fi

log_debug "layer ${layer_dir}; node ${node}; LD_PRELOAD=${LD_PRELOAD}"
log_debug "exec ${helper} ${node} ${init_js} -- $*"
exec "$helper" "$node" "$init_js" -- "$@"
