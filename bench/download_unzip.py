#!/usr/bin/env python3
"""What users do today without a loader: download the zip to /tmp with one GET, then unzip it.

    python3 bench/download_unzip.py <object URL> <zip path> <directory>

Streams the body to <zip path> (1 MiB at a time), runs `unzip -q <zip> -d <directory>`, and
prints one JSON line: download_s, unzip_s, maxrss_kib (the larger of this process's and
unzip's peak RSS).
"""
import json
import resource
import shutil
import subprocess
import sys
import time
import urllib.request


def main() -> int:
    url, zip_path, dest = sys.argv[1:4]
    t0 = time.monotonic()
    with urllib.request.urlopen(url) as resp, open(zip_path, "wb") as out:
        shutil.copyfileobj(resp, out, 1 << 20)
    t1 = time.monotonic()
    subprocess.run(["unzip", "-q", zip_path, "-d", dest], check=True)
    t2 = time.monotonic()
    print(json.dumps({
        "download_s": round(t1 - t0, 3),
        "unzip_s": round(t2 - t1, 3),
        "maxrss_kib": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
