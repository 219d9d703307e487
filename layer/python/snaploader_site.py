"""snaploader's Python hook.

Lambda's Python bootstrap runs site.addsitedir('/opt/python'), which processes
/opt/python/snaploader.pth, which imports this module. If the init program loaded an archive
(SNAPLOADER_MAP is set), this puts the tree on sys.path the way a layer's directories would
be, and, under SnapStart (snapshot_restore_py importable), registers an after-restore hook
that checks every mapped file still resolves and repairs memfd links that do not.

The mapping file format is in docs/architecture.md.
"""
import os
import re
import struct
import sys

_MAGIC = b"SNAPMAP\x01"
_PATH, _DLOPEN_BASENAME, _MEMFD, _PYTHON_PATH = 1, 2, 3, 4
_SITE_PACKAGES = re.compile(r"/lib/python(\d+)\.(\d+)/site-packages$")
_activated = False


def _log(message):
    sys.stderr.write("snaploader: %s\n" % message)
    sys.stderr.flush()


def read_map(path):
    """Returns [(kind, key bytes, value bytes)]; raises ValueError if the file is malformed."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 16 or data[:8] != _MAGIC:
        raise ValueError("not a snaploader mapping file")
    (count,) = struct.unpack_from("<I", data, 8)
    records, at = [], 16
    for i in range(count):
        if at + 12 > len(data):
            raise ValueError("truncated in record %d" % i)
        kind = data[at]
        key_len, value_len = struct.unpack_from("<II", data, at + 4)
        key_at = at + 12
        value_at = key_at + key_len + 1
        end = value_at + value_len + 1
        if end > len(data) or data[value_at - 1] != 0 or data[end - 1] != 0:
            raise ValueError("record %d is malformed" % i)
        records.append((kind, data[key_at:key_at + key_len], data[value_at:value_at + value_len]))
        at = end
    if at != len(data):
        raise ValueError("%d trailing bytes" % (len(data) - at))
    return records


class RestoreError(Exception):
    """A mapped file no longer resolves after a restore, and there is no copy to recover it from."""


def _wanted_site_dir(path):
    m = _SITE_PACKAGES.search(path)
    return m is None or (int(m.group(1)), int(m.group(2))) == sys.version_info[:2]


def _is_memfd(fd):
    try:
        return os.readlink("/proc/self/fd/%d" % fd).startswith("/memfd:")
    except OSError:
        return False


def verify_and_repair(records=None):
    """Checks every mapped file resolves; re-points memfd links at this process's fds.

    Returns (checked, repaired) and logs one line. Raises RestoreError when a mapped file is
    gone: under SnapStart the runtime client then fails the restore (Runtime.AfterRestoreError)
    with that message instead of starting a function that would fail on first use.
    """
    if records is None:
        records = read_map(os.environ["SNAPLOADER_MAP"])
    pid = os.getpid()
    repaired = 0
    for kind, key, value in records:
        if kind != _MEMFD:
            continue
        link = os.fsdecode(key)
        fd = int(value)
        want = "/proc/%d/fd/%d" % (pid, fd)
        try:
            current = os.readlink(link)
        except OSError:
            current = None
        if current != want and _is_memfd(fd):
            tmp = "%s.snaploader-repair" % link
            os.symlink(want, tmp)
            os.replace(tmp, link)
            repaired += 1
    missing = [os.fsdecode(v) for k, _, v in records if k == _PATH and not os.path.exists(v)]
    checked = sum(1 for k, _, _ in records if k == _PATH)
    if missing:
        tree = os.path.dirname(os.path.dirname(os.environ.get("SNAPLOADER_MAP", "")))  # <tree>/.snaploader/map
        message = ("after restore: %d of %d mapped files do not resolve (first: %s), %d links repaired: "
                   "the archive's tree in %s changed while the function was snapshotted and cannot be "
                   "recovered; publish a new version to take a new snapshot"
                   % (len(missing), checked, missing[0], repaired, tree))
        _log(message)
        raise RestoreError("snaploader: " + message)
    _log("after restore: %d mapped files resolve, %d links repaired" % (checked, repaired))
    return checked, repaired


def _after_restore():
    verify_and_repair()


def activate():
    global _activated
    path = os.environ.get("SNAPLOADER_MAP")
    if _activated or not path:
        return
    _activated = True
    try:
        records = read_map(path)
    except (OSError, ValueError) as e:
        _log("cannot read the mapping file %s (%s): the archive's Python packages are not on sys.path" % (path, e))
        return
    import site

    for kind, _, value in records:
        if kind == _PYTHON_PATH:
            d = os.fsdecode(value)
            if _wanted_site_dir(d) and d not in sys.path:
                site.addsitedir(d)
    try:
        from snapshot_restore_py import register_after_restore
    except ImportError:
        return
    register_after_restore(_after_restore)


activate()
