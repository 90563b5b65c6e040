#!/usr/bin/env python3
"""What the disk and the registrar's group commit contribute to a REGISTER's latency.

    disk_and_commits.py fsync DIR      fdatasync of a 4 KiB overwrite in DIR, 200 times, 5 ms
                                       apart: the disk's own durable-write latency right now
    disk_and_commits.py commits STATUS the binding writer's commit times from sba-registrar's
                                       status file (its `commit` histogram)
prints: n=.. p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. (commits: bucket upper bounds, and mean_ms)
"""
import json
import os
import sys
import time


def fsync_probe(directory):
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"\0" * 4096 * 64)
        os.fsync(fd)
        times = []
        for i in range(200):
            os.pwrite(fd, b"x" * 4096, (i % 64) * 4096)
            start = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - start) * 1000)
            time.sleep(0.005)
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    at = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    print(f"n={len(times)} p50_ms={at(0.5):.2f} p90_ms={at(0.9):.2f} p99_ms={at(0.99):.2f} max_ms={times[-1]:.2f}")


def commits(status_path):
    with open(status_path) as f:
        commit = json.load(f)["commit"]
    n = commit["count"]
    if n == 0:
        print("n=0")
        return
    # Cumulative (upper bound in seconds, count); the quantile's bucket bound, as Prometheus does.
    def bound(q):
        for le, seen in commit["buckets"]:
            if seen >= q * n:
                return f"{le * 1000:g}"
        return "inf"
    print(f"n={n} p50_ms<={bound(0.5)} p90_ms<={bound(0.9)} p99_ms<={bound(0.99)} mean_ms={commit['sum_seconds'] * 1000 / n:.2f}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("fsync", "commits"):
        raise SystemExit(__doc__)
    (fsync_probe if sys.argv[1] == "fsync" else commits)(sys.argv[2])
