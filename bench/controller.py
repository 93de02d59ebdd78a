#!/usr/bin/env python3
"""The cluster controller, measured.

1. loss: a worker of a local cluster (transport "ssh": an sshd per node; each node
   serves a page with the web runtime) is lost: its processes killed and its
   directory removed. Timed from the loss to the new worker's page answering, with
   a running `tik controller` (its default 5 s interval, and 1 s), against a person
   who runs `tik apply --auto-approve` at the very moment of the loss (the best a
   plain apply can do).
2. idle: the CPU an idle controller (default interval) uses watching a cluster of
   20 local nodes, over --minutes (10 by default): the controller's own and its
   children's (health checks), from /proc.
3. calls: the API requests of one idle round (`tik controller --once`) for a
   workspace and 100 workers on moto, counted by the fault proxy in front of it,
   beside those of a no-op `tik plan`.

    cargo build --release
    python3 bench/controller.py [--only loss,idle,calls] [--minutes 10] [--workers 100]

Needs moto's server in .venv-test (the README's test command installs it) for
`calls`, and /usr/sbin/sshd for `loss`.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from remote_state import free_port, wait_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FAULTS = os.path.join(ROOT, "providers/aws/tests/moto/faults.py")
MOTO = os.path.join(ROOT, ".venv-test/bin/moto_server")
TICKS = os.sysconf("SC_CLK_TCK")


def http(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def tik(binary, project, *args, env=None, check=True):
    r = subprocess.run([binary, "-C", project, *args], capture_output=True, text=True,
                       env={**os.environ, "NO_COLOR": "1", **(env or {})})
    if check and r.returncode != 0:
        sys.exit(f"tik {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    return r


def local_project(workers, transport):
    d = tempfile.mkdtemp(prefix="tik-controller-")
    with open(os.path.join(d, "main.tik.hcl"), "w") as f:
        f.write(
            f'workspace "dev" {{\n  provider  = "local"\n  transport = "{transport}"\n'
            '  network {\n    cidr = "127.78.0.0/16"\n  }\n}\n\n'
            'cluster "etl" {\n  workspace = workspace.dev\n  head {}\n'
            f'  workers "default" {{\n    min = {workers}\n    max = {workers}\n  }}\n'
            '  runtime "web" {}\n}\n'
        )
    return d


def node_dir(project, name):
    return os.path.join(project, ".tik/local/workspaces/dev/clusters/etl", name)


def pids_in(directory):
    """Processes whose working directory or command line is inside `directory`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(directory) or directory in cmd:
            found.append(int(pid))
    return found


def lose(project, name):
    """What losing a machine does: its processes end, its disk is gone."""
    d = node_dir(project, name)
    for pid in pids_in(d):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    shutil.rmtree(d)


def serving(project, name, deadline):
    """Waits until the node's page answers with its name; the time it did."""
    while time.time() < deadline:
        try:
            with open(os.path.join(node_dir(project, name), "node.json")) as f:
                ip = json.load(f)["private_ip"]
            if name in http(f"http://{ip}:8000/"):
                return time.time()
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    sys.exit(f"{name} did not serve again")


def bench_loss(binary, reps):
    if not os.path.exists("/usr/sbin/sshd"):
        sys.exit("loss needs /usr/sbin/sshd: apt-get install openssh-server")
    project = local_project(3, "ssh")
    tik(binary, project, "apply", "--auto-approve")
    results = {}
    try:
        for label, interval in (("controller, --interval 5s", "5s"),
                                ("controller, --interval 1s", "1s"),
                                ("tik apply at the loss", None)):
            times = []
            for i in range(reps):
                name = f"worker-default-{i % 3}"
                controller = None
                if interval:
                    controller = subprocess.Popen(
                        [binary, "-C", project, "controller", "--interval", interval],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(2)
                start = time.time()
                lose(project, name)
                if interval is None:
                    tik(binary, project, "apply", "--auto-approve")
                done = serving(project, name, start + 300)
                times.append(done - start)
                if controller:
                    controller.send_signal(signal.SIGTERM)
                    controller.wait()
            results[label] = times
    finally:
        tik(binary, project, "destroy", "--auto-approve", check=False)
        shutil.rmtree(project, ignore_errors=True)
    print("\nA lost worker serving again (local provider, ssh transport, web runtime):")
    print("| how | median | runs |")
    print("|---|---|---|")
    for label, times in results.items():
        runs = ", ".join(f"{t:.1f}" for t in times)
        print(f"| {label} | {statistics.median(times):.1f} s | {runs} |")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime, stime, cutime, cstime: fields 14-17 of stat, 11-14 after the name.
    return sum(int(x) for x in fields[11:15]) / TICKS


def bench_idle(binary, minutes, nodes):
    project = local_project(nodes - 1, "local")
    tik(binary, project, "apply", "--auto-approve")
    try:
        controller = subprocess.Popen([binary, "-C", project, "controller"],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(10)  # its first rounds
        before, t0 = cpu_seconds(controller.pid), time.time()
        time.sleep(minutes * 60)
        after, t1 = cpu_seconds(controller.pid), time.time()
        controller.send_signal(signal.SIGTERM)
        out, _ = controller.communicate()
    finally:
        tik(binary, project, "destroy", "--auto-approve", check=False)
        shutil.rmtree(project, ignore_errors=True)
    used = after - before
    acted = [line for line in out.splitlines() if "acting" in line]
    print(f"\nAn idle controller watching {nodes} local nodes (web runtime, interval 5s), "
          f"{(t1 - t0) / 60:.1f} minutes:")
    print(f"  CPU {used:.1f} s ({100 * used / (t1 - t0):.2f}% of one core), "
          f"{len(acted)} rounds acted")


def bench_calls(binary, workers):
    if not os.path.exists(MOTO):
        sys.exit(f"calls needs moto's server at {MOTO}: run the README's test command")
    moto_port, proxy_port = free_port(), free_port()
    moto = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(moto_port)
    python = os.path.join(os.path.dirname(MOTO), "python3")
    proxy = subprocess.Popen([python, FAULTS, str(proxy_port), f"http://127.0.0.1:{moto_port}", "[]"],
                             stdout=subprocess.DEVNULL)
    wait_port(proxy_port)
    proxied = f"http://127.0.0.1:{proxy_port}"
    project = tempfile.mkdtemp(prefix="tik-controller-aws-")
    with open(os.path.join(project, "main.tik.hcl"), "w") as f:
        f.write(
            'workspace "lab" {\n  provider = "aws"\n  region   = "us-east-1"\n}\n\n'
            'cluster "etl" {\n  workspace = workspace.lab\n'
            '  head {\n    image         = "ami-03cf127a"\n    instance_type = "m5.large"\n  }\n'
            f'  workers "default" {{\n    min = {workers}\n    max = {workers}\n  }}\n}}\n'
        )
    fake = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true"}
    direct = {**fake, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}"}
    through = {**fake, "AWS_ENDPOINT_URL": proxied}
    try:
        t = time.time()
        tik(binary, project, "apply", "--auto-approve", env=direct)
        applied = time.time() - t
        rows = []
        for label, args in (("tik plan (no changes)", ["plan", "--detailed-exitcode"]),
                            ("tik controller --once (idle)", ["controller", "--once"])):
            http(f"{proxied}/__reset")
            t = time.time()
            r = tik(binary, project, *args, env=through)
            took = time.time() - t
            counts = json.loads(http(f"{proxied}/__requests"))
            rows.append((label, counts["requests"], took, r.returncode))
        tik(binary, project, "destroy", "--auto-approve", env=direct)
    finally:
        for p in (proxy, moto):
            p.kill()
            p.wait()
        shutil.rmtree(project, ignore_errors=True)
    print(f"\nA workspace and {workers} workers on moto (apply took {applied:.0f} s):")
    print("| command | API requests | time | exit |")
    print("|---|---|---|---|")
    for label, n, took, code in rows:
        print(f"| {label} | {n} | {took:.1f} s | {code} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tik", default=os.path.join(ROOT, "target/release/tik"))
    ap.add_argument("--only", default="loss,idle,calls")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--workers", type=int, default=100)
    a = ap.parse_args()
    if not os.path.exists(a.tik):
        sys.exit(f"{a.tik} is missing: cargo build --release")
    only = a.only.split(",")
    if "calls" in only:
        bench_calls(a.tik, a.workers)
    if "loss" in only:
        bench_loss(a.tik, a.reps)
    if "idle" in only:
        bench_idle(a.tik, a.minutes, a.nodes)


if __name__ == "__main__":
    main()
