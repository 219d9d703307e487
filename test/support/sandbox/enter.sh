#!/bin/bash
# Enters the Lambda-like sandbox the end-to-end tests run functions in, then execs a command.
#
#   enter.sh --root DIR --task DIR --runtime DIR... [--lang-link NAME=TARGET]... [--layer DIR]...
#            [--hide PATH]...
#            [--tmp DIR | --tmp-size SIZE] [--uid N] [--gid N] [--no-passwd-entry] [--nofile N]
#            -- COMMAND [ARGS...]
#
# The runtime interface emulator runs this as the function's bootstrap, as root. It re-execs
# itself in a private mount namespace, builds a new root on a tmpfs at --root (an empty
# directory), and execs COMMAND inside it as an unprivileged user. The rules, and where each
# comes from, are in docs/testing.md:
#   /usr, /etc, /sys   read-only binds of the host's (the merged-/usr symlinks as on the host)
#   /proc              the host's, rbind (same PID namespace: PIDs are real)
#   /dev               null, zero, full, random, urandom, tty and the fd links: no /dev/shm
#   /tmp               --tmp (a tmpfs the caller mounted, so it can look inside after the
#                      function has gone), or a fresh tmpfs of --tmp-size (512m), mode 1777
#   /var/task          --task, read-only
#   /opt               the --layer directories merged in order (later wins), read-only
#   /var/runtime       the --runtime directories merged (runtime client, bootstrap), read-only
#   /var/lang/bin      the --lang-link NAME=TARGET links (the runtime's interpreter, on the host's /usr)
#   /etc/passwd        the host's plus Lambda's sandbox user (not with --no-passwd-entry)
#   /                  read-only once built
# --hide PATH masks a host path inside the root (an empty tmpfs over a directory, /dev/null
# over a file), so a test can prove a library came from the archive.
set -euo pipefail

# The function's PATH is Lambda's; this script's own tools (mount, chroot) live in sbin too.
lambda_path=$PATH
PATH=/usr/sbin:/usr/bin:/sbin:/bin

die() { printf 'sandbox: %s\n' "$*" >&2; exit 125; }

if [[ "${1:-}" != --inside ]]; then
  exec unshare --mount --propagation private -- "$0" --inside "$@"
fi
shift

root='' task='' tmp='' no_passwd_entry='' uid=993 gid=990 tmp_size=512m nofile=1024
layers=() runtimes=() hide=() lang_links=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --root) root=$2; shift 2 ;;
    --task) task=$2; shift 2 ;;
    --runtime) runtimes+=("$2"); shift 2 ;;
    --layer) layers+=("$2"); shift 2 ;;
    --hide) hide+=("$2"); shift 2 ;;
    --lang-link) lang_links+=("$2"); shift 2 ;;
    --uid) uid=$2; shift 2 ;;
    --no-passwd-entry) no_passwd_entry=1; shift ;;
    --gid) gid=$2; shift 2 ;;
    --tmp-size) tmp_size=$2; shift 2 ;;
    --tmp) tmp=$2; shift 2 ;;
    --nofile) nofile=$2; shift 2 ;;
    --) shift; break ;;
    *) die "unknown option $1" ;;
  esac
done
[[ -n "$root" && -d "$root" ]] || die "--root must name an existing directory"
[[ -n "$task" && -d "$task" ]] || die "--task must name an existing directory"
[[ ${#runtimes[@]} -gt 0 ]] || die "--runtime is required"
[[ $# -gt 0 ]] || die "no command after --"

ro_bind() { # ro_bind SRC DEST: a read-only bind (the remount is what makes it read-only)
  mount --rbind -- "$1" "$2"
  mount -o remount,bind,ro -- "$2"
}

merge() { # merge DEST DIR...: the directories merged read-only at DEST, later ones on top, as Lambda unpacks layers
  local dest=$1 lower='' d
  shift
  for d in "$@"; do [[ -d "$d" ]] || die "$d is not a directory"; done
  if [[ $# -eq 1 ]]; then ro_bind "$1" "$dest"; return; fi
  for d in "$@"; do lower="${d}${lower:+:${lower}}"; done
  mount -t overlay overlay -o "lowerdir=${lower}" "$dest"
}

mount -t tmpfs -o mode=0755,size=64m snaploader-sandbox "$root"
cd "$root"

for d in bin sbin lib lib32 lib64 libx32; do
  if [[ -L "/$d" ]]; then ln -s "$(readlink "/$d")" "$d"; fi
done
for d in usr etc sys; do mkdir "$d"; ro_bind "/$d" "$d"; done
for d in bin sbin lib lib64; do
  if [[ -d "/$d" && ! -L "/$d" ]]; then mkdir "$d"; ro_bind "/$d" "$d"; fi
done
mkdir proc && mount --rbind /proc proc

mkdir dev
for n in null zero full random urandom tty; do touch "dev/$n"; mount --bind "/dev/$n" "dev/$n"; done
ln -s /proc/self/fd dev/fd
ln -s /proc/self/fd/0 dev/stdin
ln -s /proc/self/fd/1 dev/stdout
ln -s /proc/self/fd/2 dev/stderr

mkdir tmp
if [[ -n "$tmp" ]]; then mount --bind -- "$tmp" tmp
else mount -t tmpfs -o "mode=1777,size=${tmp_size}" tmp tmp
fi

mkdir -p var/task var/runtime var/lang/bin opt
ro_bind "$task" var/task
merge var/runtime "${runtimes[@]}"
if [[ ${#layers[@]} -gt 0 ]]; then merge opt "${layers[@]}"; fi
for link in "${lang_links[@]}"; do ln -s "${link#*=}" "var/lang/bin/${link%%=*}"; done

# Lambda's /etc/passwd names the sandbox user (sbx_user1051, with a home that does not exist).
mkdir .sandbox
{ cat /etc/passwd; printf 'sbx_user1051:x:%s:%s::/home/sbx_user1051:/sbin/nologin\n' "$uid" "$gid"; } > .sandbox/passwd
{ cat /etc/group; printf 'sbx_group:x:%s:\n' "$gid"; } > .sandbox/group
if [[ -z "$no_passwd_entry" ]]; then
  mount --bind .sandbox/passwd etc/passwd
  mount --bind .sandbox/group etc/group
fi

for p in "${hide[@]}"; do
  if [[ -d "$root$p" ]]; then mount -t tmpfs -o ro,size=4k,mode=0755 hidden "$root$p"
  elif [[ -e "$root$p" ]]; then mount --bind /dev/null "$root$p"
  fi
done

mount -o remount,bind,ro "$root"
ulimit -n "$nofile"
export PATH=$lambda_path
exec /usr/sbin/chroot "$root" /usr/bin/setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all \
  -- /bin/sh -c 'cd /var/task && exec "$@"' sh "$@"
