#!/bin/bash
# The arm64 Debian root filesystem the emulated tests (test/arm64.test.ts) run the arm64 layer
# in, and the kernel set up to run arm64 executables with qemu-user.
#
#   test/support/arm64-root.sh      prints the root's path as its last line of stdout
#
# The root is made once per content and kept in
# ${SNAPLOADER_CACHE:-$HOME/.cache/snaploader}/arm64-root-<suite>-<hash>/, the hash being of
# the suite, the package list and REVISION. Packages come from Debian with apt, through a
# private configuration (the machine's own apt state and sources are not touched), checked
# against Debian's archive keyring and the signed indexes, and are unpacked with dpkg-deb:
# no maintainer script runs, none is needed to start bash, node and python3. The exact
# versions are listed in <root>/.manifest.
#
# Needs root (binfmt_misc, chroot), and Debian's qemu-user-static (make system-deps).
set -euo pipefail

SUITE=bookworm
MIRROR=http://deb.debian.org/debian
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# Unpacked with their dependencies: bash for wrapper.sh, libstdc++6 for the Node layer's node,
# CPython 3.11 with its standard library (ctypes, json).
PACKAGES=(bash libstdc++6 python3-minimal python3.11-minimal libpython3.11-stdlib)
# Unpacked alone, for its headers: the test extension is compiled against them.
HEADER_PACKAGES=(libpython3.11-dev)
# Raise when the way the root is made changes, so that every cache is made again.
REVISION=1

QEMU=/usr/bin/qemu-aarch64-static
BINFMT_CONF=/usr/lib/binfmt.d/qemu-aarch64.conf
BINFMT_DIR=/proc/sys/fs/binfmt_misc

say() { printf 'arm64-root: %s\n' "$*" >&2; }
die() {
  printf 'arm64-root: %s\n' "$*" >&2
  exit 1
}

# arm64 ELF files handed to qemu-aarch64-static by the kernel. The F flag in Debian's entry
# opens the interpreter once, here, so it also works inside a chroot that has no qemu.
ensure_binfmt() {
  [[ -x "$QEMU" && -r "$BINFMT_CONF" ]] ||
    die "$QEMU or $BINFMT_CONF is missing: install Debian's qemu-user-static (make system-deps)"
  if [[ ! -e "$BINFMT_DIR/register" ]]; then
    mount -t binfmt_misc binfmt_misc "$BINFMT_DIR" ||
      die "cannot mount binfmt_misc on $BINFMT_DIR (root is needed, and a kernel with CONFIG_BINFMT_MISC)"
  fi
  if [[ ! -e "$BINFMT_DIR/qemu-aarch64" ]]; then
    # Another process may register it at the same moment: EEXIST is fine, the check below says.
    grep -v '^#' "$BINFMT_CONF" >"$BINFMT_DIR/register" 2>/dev/null || true
  fi
  [[ -e "$BINFMT_DIR/qemu-aarch64" ]] ||
    die "cannot register $BINFMT_CONF with $BINFMT_DIR/register: arm64 executables will not run"
  if [[ "$(head -n 1 "$BINFMT_DIR/qemu-aarch64")" != enabled ]]; then
    echo 1 >"$BINFMT_DIR/qemu-aarch64" || die "cannot enable $BINFMT_DIR/qemu-aarch64"
  fi
  if [[ -e "$BINFMT_DIR/status" && "$(cat "$BINFMT_DIR/status")" != enabled ]]; then
    die "binfmt_misc is disabled ($BINFMT_DIR/status): echo 1 > $BINFMT_DIR/status"
  fi
}

# apt with a configuration of its own: only arm64, only $SUITE main, state and cache in $1.
private_apt() {
  local dir=$1
  mkdir -p "$dir/state/lists/partial" "$dir/cache/archives/partial" "$dir/parts" "$dir/debs"
  : >"$dir/state/status"
  printf 'deb [arch=arm64 signed-by=%s] %s %s main\n' "$KEYRING" "$MIRROR" "$SUITE" >"$dir/sources.list"
  cat >"$dir/apt.conf" <<EOF
Dir::Etc::Parts "$dir/parts";
Dir::Etc::SourceList "$dir/sources.list";
Dir::Etc::SourceParts "$dir/parts";
Dir::Etc::Preferences "$dir/parts/none";
Dir::Etc::PreferencesParts "$dir/parts";
Dir::State "$dir/state";
Dir::State::status "$dir/state/status";
Dir::Cache "$dir/cache";
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Install-Recommends "false";
Acquire::Languages "none";
Debug::NoLocking "true";
APT::Sandbox::User "root";
EOF
}

build_root() {
  local final=$1 work root deb
  mkdir -p "$(dirname "$final")"
  work=$(mktemp -d "${final}.partial-XXXXXX")
  # shellcheck disable=SC2064 # $work is meant to be expanded now
  trap "rm -rf '$work'" EXIT
  private_apt "$work/apt"
  export APT_CONFIG="$work/apt/apt.conf"
  say "downloading arm64 packages from Debian $SUITE: ${PACKAGES[*]} ${HEADER_PACKAGES[*]}"
  apt-get -qq update >&2 || die "apt-get update for arm64 $SUITE failed (see above): is $MIRROR reachable?"
  apt-get -qq install --download-only -y "${PACKAGES[@]}" >&2 ||
    die "apt-get could not download ${PACKAGES[*]} for arm64 (see above)"
  (cd "$work/apt/debs" && apt-get -qq download "${HEADER_PACKAGES[@]}" >&2) ||
    die "apt-get could not download ${HEADER_PACKAGES[*]} for arm64 (see above)"
  unset APT_CONFIG

  root="$work/root"
  # A merged /usr, as Debian bookworm's installers make it: /lib/ld-linux-aarch64.so.1 is the
  # interpreter every arm64 executable names, /bin/bash the wrapper's.
  mkdir -p "$root/usr/bin" "$root/usr/lib" "$root/usr/sbin"
  ln -s usr/bin "$root/bin"
  ln -s usr/lib "$root/lib"
  ln -s usr/sbin "$root/sbin"
  : >"$root/.manifest"
  for deb in "$work/apt/cache/archives/"*.deb "$work/apt/debs/"*.deb; do
    # dpkg-deb -x would replace the /lib link with a directory; tar can keep it.
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink --no-same-owner -C "$root" ||
      die "could not unpack $deb"
    # shellcheck disable=SC2016 # dpkg-deb's own ${Field} syntax
    dpkg-deb -W --showformat='${Package} ${Version} ${Architecture}\n' "$deb" >>"$root/.manifest"
  done
  [[ -L "$root/lib" && -e "$root/lib/ld-linux-aarch64.so.1" ]] ||
    die "the unpacked root has no /lib/ld-linux-aarch64.so.1 (did dpkg-deb replace the /lib link?)"
  # Where the tests mount the layer, the function, /tmp, /proc and /dev.
  mkdir -p "$root/opt" "$root/var/task" "$root/tmp" "$root/proc" "$root/dev"
  sort -o "$root/.manifest" "$root/.manifest"

  local machine
  machine=$(chroot "$root" /usr/bin/python3 -c 'import platform; print(platform.machine())') ||
    die "python3 does not start in the new root under qemu-user (see above)"
  [[ "$machine" == aarch64 ]] || die "python3 in the new root says it runs on $machine, not aarch64"

  # Whoever finishes first publishes; a root made at the same time by another process is dropped.
  mv -T "$root" "$final" 2>/dev/null || [[ -e "$final/.manifest" ]] || die "cannot move the root to $final"
  rm -rf "$work"
  trap - EXIT
  say "arm64 root ready in $final ($(wc -l <"$final/.manifest") packages)"
}

main() {
  [[ "$(id -u)" == 0 ]] || die "needs root: binfmt_misc registration and chroot"
  ensure_binfmt
  local key version final
  key=$(printf '%s\n' "$REVISION" "$SUITE" "${PACKAGES[@]}" -- "${HEADER_PACKAGES[@]}" | sha256sum | cut -c1-12)
  version="$SUITE-$key"
  final="${SNAPLOADER_CACHE:-${HOME:?set HOME or SNAPLOADER_CACHE}/.cache/snaploader}/arm64-root-$version"
  if [[ ! -e "$final/.manifest" ]]; then
    build_root "$final"
  fi
  printf '%s\n' "$final"
}

main "$@"
