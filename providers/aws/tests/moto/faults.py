"""A fault-injecting HTTP proxy in front of a moto server.

moto answers every request it can; AWS sometimes does not: no spot capacity, an
instance profile that EC2 cannot see yet, throttling. This proxy forwards every
request to moto except those matching a rule, which get the error AWS would send,
a given number of times. The tests start it (standard library only) with:

    python3 faults.py LISTEN_PORT MOTO_URL RULES_JSON [KILL_JSON]

Each rule: {"when": [substrings of the form-encoded body and the path], "status": 400,
"code": "...", "message": "...", "times": N, "protocol": "ec2" | "query" | "s3"},
optionally "method": "PUT" to match only that method. A rule with "reset": true
answers nothing and closes the connection instead, as a reset connection does; with
"forward": true as well, moto does the request first (its answer is lost).
GET /__faults answers how many times each rule has fired.

GET /__requests answers how many requests went through and the bytes of their
bodies ({"requests": N, "bytes": N}); GET /__reset sets those counts to zero.

It also counts write calls (an EC2, IAM or STS Action that is not a Describe, List
or Get; any S3 PUT, POST or DELETE): GET /__writes answers their names in order.
With KILL_JSON {"at": N, "pid_file": PATH}, once moto has answered the N-th write,
the process whose id PATH holds is killed with SIGKILL before the answer reaches it:
the write happened, and its caller never learns so. With "before": true as well, it
is killed when the N-th write arrives, which moto then never sees.
"""

import http.client
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
MOTO = urllib.parse.urlparse(sys.argv[2])
RULES = json.loads(sys.argv[3])
KILL = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None
FIRED = [0] * len(RULES)
WRITES = []
COUNTS = {"requests": 0, "bytes": 0}
LOCK = threading.Lock()


def write_name(method, path, form):
    """The name of a write call, or None for a read."""
    action = re.search(r"(?:^|&)Action=([A-Za-z0-9]+)", form)
    if action:
        name = action.group(1)
        return None if name.startswith(("Describe", "List", "Get")) else name
    if method in ("PUT", "POST", "DELETE") and not path.startswith("/moto-api"):
        return f"S3 {method} {path.split('?')[0]}"
    return None


def error_body(rule):
    code, message = rule["code"], rule.get("message", rule["code"])
    if rule.get("protocol") == "s3":
        return (
            '<?xml version="1.0" encoding="UTF-8"?><Error>'
            f"<Code>{code}</Code><Message>{message}</Message>"
            "<RequestId>faults</RequestId></Error>"
        )
    if rule.get("protocol", "ec2") == "ec2":
        return (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            "<RequestID>faults</RequestID></Response>"
        )
    return (
        '<ErrorResponse><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>faults</RequestId></ErrorResponse>"
    )


def kill_caller():
    pid = ""
    for _ in range(100):  # the test writes it right after the spawn
        with open(KILL["pid_file"]) as f:
            pid = f.read().strip()
        if pid:
            break
        time.sleep(0.05)
    os.kill(int(pid), signal.SIGKILL)


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # its caller was killed meanwhile

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def handle_any(self):
        if self.path == "/__faults":
            with LOCK:
                return self.reply(200, json.dumps(FIRED))
        if self.path == "/__writes":
            with LOCK:
                return self.reply(200, json.dumps(WRITES))
        if self.path == "/__requests":
            with LOCK:
                return self.reply(200, json.dumps(COUNTS))
        if self.path == "/__reset":
            with LOCK:
                COUNTS["requests"] = COUNTS["bytes"] = 0
                return self.reply(200, "{}")
        body = self.read_body()
        with LOCK:
            COUNTS["requests"] += 1
            COUNTS["bytes"] += len(body)
        form = body.decode("utf-8", "replace")
        text = urllib.parse.unquote_plus(form) + self.path
        fired = None
        with LOCK:
            for i, rule in enumerate(RULES):
                if (
                    FIRED[i] < rule["times"]
                    and rule.get("method", self.command) == self.command
                    and all(w in text for w in rule["when"])
                ):
                    FIRED[i] += 1
                    fired = rule
                    break
        if fired is not None and not fired.get("reset"):
            return self.reply(
                fired["status"], error_body(fired), [("Content-Type", "text/xml")]
            )
        if fired is not None and not fired.get("forward"):
            self.close_connection = True
            return
        name = write_name(self.command, self.path, form)
        if KILL is not None and KILL.get("before") and name is not None:
            with LOCK:
                WRITES.append(name)
                kill = len(WRITES) == KILL["at"]
            if kill:
                kill_caller()
                self.close_connection = True
                return
        conn = http.client.HTTPConnection(MOTO.hostname, MOTO.port, timeout=120)
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("transfer-encoding", "content-length", "connection")
        }
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        kept = [
            (k, v)
            for k, v in resp.getheaders()
            if k.lower() not in ("transfer-encoding", "content-length", "connection")
        ]
        conn.close()
        if fired is not None:
            # Done by moto; the answer is lost with the connection.
            self.close_connection = True
            return
        if name is not None and not (KILL is not None and KILL.get("before")):
            with LOCK:
                WRITES.append(name)
                kill = KILL is not None and len(WRITES) == KILL["at"]
            if kill:
                kill_caller()
                self.close_connection = True
                return
        self.reply(resp.status, data, kept)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


ThreadingHTTPServer(("127.0.0.1", PORT), Proxy).serve_forever()
