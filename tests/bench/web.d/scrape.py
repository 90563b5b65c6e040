#!/usr/bin/env python3
"""The scraper of tests/bench/web: THREADS keep-alive connections to an HTTP server, each asking
for the PATHS in turn as fast as the answers come, until the file STOP exists or SECONDS have
passed (bounded either way). With --password, each connection first logs in to sba-web (its
login form, then the session cookie) so that the admin pages can be asked for too. Prints one
line: requests=N errors=N rate=R/s p50_ms=X p99_ms=Y (the time of one request, sent to body read).
Writes READY (a file) once every connection is logged in and has had its first answer."""
import argparse
import http.client
import os
import re
import threading
import time


def login(conn, password):
    conn.request("GET", "/login")
    res = conn.getresponse()
    page = res.read().decode()
    cookie = re.search(r"sba_login=([^;]+)", res.getheader("Set-Cookie", ""))
    token = re.search(r'name="form" value="([^"]+)"', page)
    if not cookie or not token:
        raise RuntimeError(f"no login form ({res.status})")
    body = f"form={token.group(1)}&password={password}"
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"sba_login={cookie.group(1)}"}
    conn.request("POST", "/login", body, headers)
    res = conn.getresponse()
    res.read()
    session = re.search(r"sba_session=([^;]+)", ",".join(res.headers.get_all("Set-Cookie") or []))
    if res.status != 303 or not session:
        raise RuntimeError(f"login refused ({res.status})")
    return f"sba_session={session.group(1)}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--paths", default="/metrics")
    ap.add_argument("--password")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--ready", required=True)
    args = ap.parse_args()
    paths = args.paths.split(",")
    times, errors, lock = [], [0], threading.Lock()
    started = threading.Barrier(args.threads + 1)
    deadline = time.monotonic() + args.seconds

    def run(i):
        conn = http.client.HTTPConnection(args.host, args.port, timeout=10)
        cookie = {}
        mine, failed, n = [], 0, i
        try:
            if args.password:
                cookie = {"Cookie": login(conn, args.password)}
            conn.request("GET", paths[0], headers=cookie)
            conn.getresponse().read()
        except Exception as e:  # the run reports it; the bench does not go on without a scraper
            print(f"scraper {i}: {e}", flush=True)
            failed += 1
        started.wait()
        while not os.path.exists(args.stop) and time.monotonic() < deadline:
            path = paths[n % len(paths)]
            n += 1
            t0 = time.monotonic()
            try:
                conn.request("GET", path, headers=cookie)
                res = conn.getresponse()
                res.read()
                if res.status != 200:
                    failed += 1
                    continue
            except (OSError, http.client.HTTPException):
                failed += 1
                conn.close()
                conn = http.client.HTTPConnection(args.host, args.port, timeout=10)
                continue
            mine.append(time.monotonic() - t0)
        with lock:
            times.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=run, args=(i,)) for i in range(args.threads)]
    for t in threads:
        t.start()
    started.wait()
    t0 = time.monotonic()
    open(args.ready, "w").close()
    for t in threads:
        t.join()
    secs = max(time.monotonic() - t0, 1e-9)
    times.sort()
    pick = lambda q: times[int((len(times) - 1) * q)] * 1000 if times else 0
    print(f"requests={len(times)} errors={errors[0]} rate={len(times) / secs:.0f} p50_ms={pick(0.5):.1f} p99_ms={pick(0.99):.1f}")


if __name__ == "__main__":
    main()
