"""An EC2 instance metadata service for a test's "node": what a real instance
reaches at 169.254.169.254, here on a loopback port. It hands out credentials of
the role given on its command line the way EC2 does for an instance profile's role:
it assumes the role (against moto's STS) and serves the temporary credentials,
IMDSv2-style (a token first). Every request it answers is appended to LOG.

usage: imds.py PORT MOTO_ENDPOINT ROLE_NAME LOG
"""

import datetime
import http.server
import json
import sys

import boto3

PORT, ENDPOINT, ROLE, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
TOKEN = "tik-test-imds-token"
PREFIX = "/latest/meta-data/iam/security-credentials/"


def credentials():
    session = boto3.session.Session(
        aws_access_key_id="imds", aws_secret_access_key="imds", region_name="us-east-1"
    )
    arn = session.client("iam", endpoint_url=ENDPOINT).get_role(RoleName=ROLE)["Role"]["Arn"]
    got = session.client("sts", endpoint_url=ENDPOINT).assume_role(
        RoleArn=arn, RoleSessionName="head"
    )["Credentials"]
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "Code": "Success",
        "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Type": "AWS-HMAC",
        "AccessKeyId": got["AccessKeyId"],
        "SecretAccessKey": got["SecretAccessKey"],
        "Token": got["SessionToken"],
        "Expiration": (now + datetime.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, code, body, headers=()):
        data = body.encode()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        with open(LOG, "a") as log:
            log.write(f"{self.command} {self.path} {code}\n")

    def do_PUT(self):
        if self.path == "/latest/api/token":
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "21600")
            self.answer(200, TOKEN, [("X-aws-ec2-metadata-token-ttl-seconds", ttl)])
        else:
            self.answer(404, "")

    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            self.answer(401, "")
        elif self.path == PREFIX:
            self.answer(200, ROLE)
        elif self.path == PREFIX + ROLE:
            self.answer(200, json.dumps(credentials()))
        else:
            self.answer(404, "")

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
