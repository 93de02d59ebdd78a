"""A fault-injecting HTTP proxy in front of a moto server.

moto answers every request it can; AWS sometimes does not: no spot capacity, an
instance profile that EC2 cannot see yet, throttling. This proxy forwards every
request to moto except those matching a rule, which get the error AWS would send,
a given number of times. The tests start it (standard library only) with:

    python3 faults.py LISTEN_PORT MOTO_URL RULES_JSON

Each rule: {"when": [substrings of the form-encoded body], "status": 400,
"code": "...", "message": "...", "times": N, "protocol": "ec2" | "query"}.
GET /__faults answers how many times each rule has fired.
"""

import http.client
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
MOTO = urllib.parse.urlparse(sys.argv[2])
RULES = json.loads(sys.argv[3])
FIRED = [0] * len(RULES)
LOCK = threading.Lock()


def error_body(rule):
    code, message = rule["code"], rule.get("message", rule["code"])
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
            self.wfile.write(data)

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
        body = self.read_body()
        text = urllib.parse.unquote_plus(body.decode("utf-8", "replace")) + self.path
        with LOCK:
            for i, rule in enumerate(RULES):
                if FIRED[i] < rule["times"] and all(w in text for w in rule["when"]):
                    FIRED[i] += 1
                    return self.reply(
                        rule["status"], error_body(rule), [("Content-Type", "text/xml")]
                    )
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
        self.reply(resp.status, data, kept)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


ThreadingHTTPServer(("127.0.0.1", PORT), Proxy).serve_forever()
