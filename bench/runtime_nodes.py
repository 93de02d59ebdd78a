#!/usr/bin/env python3
"""Sets up local clusters of 1 and N nodes over SSH with a small runtime and
compares: N nodes should take close to one node's time, not N times it.

    cargo build && python3 bench/runtime_nodes.py [--nodes 20] [--transport ssh|local] [--runtime nap|web]
        [--network flat|public-head] [--services 1] [--tik target/debug/tik]

With `--services N` the nap runtime has N services, each with its install,
configure and start step on every node. `--tik` runs another build of tik (an
older one, side by side).

With `--network public-head` the workers have no public address and every
connection to them goes through the head's sshd.

Prints a Markdown table: apply time (nodes, sshd, sessions, steps) and destroy
time per cluster size, and the mean time of each step kind from the node logs.
"""

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIK = ROOT / "target" / "debug" / "tik"

CONFIG = """workspace "bench" {{
  provider  = "local"
  transport = "{transport}"
{network}}}

cluster "c" {{
  workspace = workspace.bench
  head {{}}
  workers "w" {{
    min = {workers}
    max = {workers}
  }}
  runtime "{runtime}" {{}}
}}
"""

# A runtime whose steps wait rather than compute: what is left of its time at N
# nodes is tik's own (the `web` runtime starts Python on every node, which on a
# 2-core machine is CPU-bound at 20 nodes).
NAP_SERVICE = """  service "s{i}" {{
    install   = "sleep 0.3; mkdir -p nap{i}"
    configure = "sleep 0.3; echo configured >nap{i}/state"
    start     = "sleep 0.3; echo started >>nap{i}/state"
    stop      = "rm -rf nap{i}"
  }}
"""


def nap(services):
    return 'runtime "nap" {\n' + "".join(NAP_SERVICE.format(i=i) for i in range(services)) + "}\n"


def run(tik, project, *args):
    t = time.monotonic()
    out = subprocess.run([str(tik), *args], cwd=project, capture_output=True, text=True)
    took = time.monotonic() - t
    if out.returncode != 0:
        raise SystemExit(f"tik {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return took


def step_times(project):
    times = {}
    for log in (Path(project) / ".tik" / "logs" / "c").glob("*.log"):
        for m in re.finditer(r"^== \S+ \((\w+)\): exit 0 after ([0-9.]+) s", log.read_text(), re.M):
            times.setdefault(m.group(1), []).append(float(m.group(2)))
    return {k: sum(v) / len(v) for k, v in sorted(times.items())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--transport", default="ssh")
    ap.add_argument("--runtime", default="nap", choices=["nap", "web"])
    ap.add_argument("--network", default="flat", choices=["flat", "public-head"])
    ap.add_argument("--services", type=int, default=1)
    ap.add_argument("--tik", type=Path, default=TIK)
    args = ap.parse_args()
    if not args.tik.exists():
        raise SystemExit(f"no {args.tik}: build first (cargo build)")
    rows = []
    for nodes in (1, args.nodes):
        project = tempfile.mkdtemp(prefix="tik-bench-nodes-")
        try:
            Path(project, "main.tik.hcl").write_text(
                CONFIG.format(
                    transport=args.transport,
                    workers=nodes - 1,
                    runtime=args.runtime,
                    network='  network { mode = "public-head" }\n' if args.network == "public-head" else "",
                )
            )
            Path(project, "runtimes", "nap").mkdir(parents=True)
            Path(project, "runtimes", "nap", "runtime.tik.hcl").write_text(nap(args.services))
            parallelism = str(max(10, nodes * (2 + 3 * args.services)))
            apply = run(args.tik, project, "apply", "--auto-approve", "--parallelism", parallelism)
            steps = step_times(project)
            destroy = run(args.tik, project, "destroy", "--auto-approve", "--parallelism", parallelism)
            rows.append((nodes, apply, destroy, steps))
        finally:
            shutil.rmtree(project, ignore_errors=True)
    print(
        f"transport = {args.transport}, runtime = {args.runtime}, network = {args.network}, "
        f"services = {args.services}, tik = {args.tik}\n"
    )
    print("| nodes | apply | destroy | mean step time |")
    print("|---|---|---|---|")
    for nodes, apply, destroy, steps in rows:
        per = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in steps.items())
        print(f"| {nodes} | {apply:.2f} s | {destroy:.2f} s | {per} |")
    print(f"\nratio {args.nodes} nodes / 1 node (apply): {rows[1][1] / rows[0][1]:.2f}")


if __name__ == "__main__":
    main()
