#!/usr/bin/env python3
"""The central site's call record receiver for tests/tests/cdr_upload.rs: HTTPS (its own test
CA), POST of JSON batches; each record stored once by its id (a batch posted again is
acknowledged, its known records counted as re-posts, not stored again). Appends what it stores
to RECORDS (one JSON line per record) and keeps a count of re-posted records in REPOSTS. It
answers each POST DELAY seconds after storing it (a slow central site: the test can kill the
uploader between the two)."""
import json
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

host, port, cert, key, records_path, reposts_path, delay = sys.argv[1:8]
seen = set()
reposts = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global reposts
        length = int(self.headers.get("Content-Length", "0"))
        batch = json.loads(self.rfile.read(length))
        new = 0
        with open(records_path, "a") as out:
            for r in batch["records"]:
                if r["id"] in seen:
                    reposts += 1
                    continue
                seen.add(r["id"])
                out.write(json.dumps(r) + "\n")
                new += 1
        with open(reposts_path, "w") as f:
            f.write(str(reposts))
        time.sleep(float(delay))
        body = json.dumps({"stored": new}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer((host, int(port)), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("listening", flush=True)
server.serve_forever()
