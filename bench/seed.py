#!/usr/bin/env python3
"""The seed algorithm, what users of the prior tool have today: one GET of the whole object
into memory, Python's zipfile over it, every entry read into a dict, and every shared library
(*.so, *.so.N) copied into a memfd.

    python3 bench/seed.py <object URL>

Prints one JSON line: files, bytes, memfds, memfd_bytes, maxrss_kib (this process's peak RSS;
memfd pages written with write() are not part of it), download_s, extract_s.
"""
import io
import json
import os
import re
import resource
import sys
import time
import urllib.request
import zipfile

SO_NAME = re.compile(r"\.so(\.\d+)*$")


def main() -> int:
    url = sys.argv[1]
    t0 = time.monotonic()
    with urllib.request.urlopen(url) as resp:
        data = resp.read()
    t1 = time.monotonic()
    files = {}
    memfds = []
    memfd_bytes = 0
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            content = zf.read(info)
            files[info.filename] = content
            if SO_NAME.search(info.filename):
                fd = os.memfd_create(os.path.basename(info.filename), 0)
                view = memoryview(content)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                memfds.append(fd)
                memfd_bytes += len(content)
    t2 = time.monotonic()
    print(json.dumps({
        "files": len(files),
        "bytes": sum(len(v) for v in files.values()),
        "memfds": len(memfds),
        "memfd_bytes": memfd_bytes,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "download_s": round(t1 - t0, 3),
        "extract_s": round(t2 - t1, 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
