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

log_debug() {
  if [[ "$debug" != off ]]; then
    printf '[snaploader:wrapper] %s\n' "$*" >&2
  fi
}

# Like the helper: exit 127, or with SNAPLOADER_ON_ERROR=continue start the runtime untouched.
fail() {
  if [[ "$on_error" == continue ]]; then
    printf 'snaploader: warning: %s; starting the runtime without the archive (SNAPLOADER_ON_ERROR=continue)\n' "$*" >&2
    exec "${runtime[@]}"
  fi
  printf 'snaploader: %s\n' "$*" >&2
  exit 127
}

if [[ $# -eq 0 ]]; then
  printf 'usage: %s <runtime> [args...]\n(set AWS_LAMBDA_EXEC_WRAPPER to this script; Lambda supplies the arguments)\n' "$0" >&2
  exit 2
fi

runtime=("$@")

if [[ "$debug" == unrecognised ]]; then
  setting_value SNAPLOADER_DEBUG
  log_debug "warning: SNAPLOADER_DEBUG=\"${REPLY}\" is not one of 1, true, yes, on, 0, false, no, off: taken as on"
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
    printf 'snaploader: SNAPLOADER_SHM="%s" is not valid: use 1, true, yes, on, 0, false, no or off\n' "$REPLY" >&2
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
    printf 'snaploader: warning: %s is missing: the snaploader layer is incomplete; starting the runtime without POSIX shared memory support\n' "$shm_lib" >&2
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
    printf 'snaploader: SNAPLOADER_ON_ERROR="%s" is not valid: use fail or continue\n' "$REPLY" >&2
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

for f in "$helper" "$preload" "$init_js"; do
  [[ -e "$f" ]] || fail "${f} is missing: the snaploader layer is incomplete; re-attach it (and check it matches the function's architecture)"
done

# Node.js for the init program: SNAPLOADER_NODE, then the snaploader Node layer, then the
# runtime's own (Node.js runtimes), then PATH.
node="${SNAPLOADER_NODE:-}"
if [[ -n "$node" ]]; then
  [[ -x "$node" ]] || fail "SNAPLOADER_NODE=${node} is not an executable file"
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
  [[ -n "$node" ]] || fail "no Node.js found for the init program: attach the snaploader Node layer (snaploader-node-<arch>.zip) or set SNAPLOADER_NODE"
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
  [[ -e "$agent" ]] || fail "${agent} is missing: the snaploader layer is incomplete; re-attach it"
  case " ${JAVA_TOOL_OPTIONS:-} " in
    *" -javaagent:${agent} "*) ;;
    *) export JAVA_TOOL_OPTIONS="-javaagent:${agent}${JAVA_TOOL_OPTIONS:+ ${JAVA_TOOL_OPTIONS}}" ;;
  esac
  log_debug "JAVA_TOOL_OPTIONS=${JAVA_TOOL_OPTIONS}"
fi

log_debug "layer ${layer_dir}; node ${node}; LD_PRELOAD=${LD_PRELOAD}"
log_debug "exec ${helper} ${node} ${init_js} -- $*"
exec "$helper" "$node" "$init_js" -- "$@"
