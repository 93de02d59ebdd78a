#!/usr/bin/env python3
"""Counts the instructions tik runs (valgrind's callgrind) at 5,000 and 50,000
resources, per shape and command, and prints the ratio: linear work gives 10x.

Wall-clock ratios on a shared 2-core machine move by several points between two
runs of the same binary (a 5,000-resource plan takes 0.1 s, and the journal's
fsyncs wait on the disk); an instruction count does not. It tells a
super-linear algorithm from noise.

    cargo build --release
    python3 bench/instructions.py                                 # the four slowest ratios
    python3 bench/instructions.py --cases chain:apply,tree:no-op  # others

Under callgrind tik runs about 50 times slower: the default cases take about
20 minutes on this project's machine. Needs valgrind (apt-get install valgrind).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, tik_config  # noqa: E402

COMMANDS = {
    "plan": ["plan"],
    "apply": ["apply", "--auto-approve"],
    "no-op": ["plan", "--detailed-exitcode"],
}


def instructions(tik, args, cwd):
    """Runs tik under callgrind; returns the instructions it executed."""
    out = os.path.join(cwd, "callgrind.out")
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", tik] + args,
        cwd=cwd,
        env=dict(os.environ, NO_COLOR="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if proc.returncode not in (0, 2):
        sys.exit(f"tik {' '.join(args)} failed in {cwd}:\n{proc.stderr[-3000:]}")
    with open(out) as f:
        for line in f:
            m = re.match(r"(summary|totals): (\d+)", line)
            if m:
                os.remove(out)
                return int(m.group(2))
    sys.exit(f"no instruction count in {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tik", default=os.path.join(ROOT, "target", "release", "tik"))
    ap.add_argument(
        "--cases",
        default="independent:no-op,chain:apply,tree:apply,tree:no-op",
        help="shape:command pairs; commands: plan, apply, no-op",
    )
    ap.add_argument("--sizes", default="5000,50000")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed: apt-get install valgrind")
    small, large = (int(s) for s in args.sizes.split(","))
    work = tempfile.mkdtemp(prefix="tik-instructions-")
    print(f"| shape | command | {small:,} | {large:,} | ratio |")
    print("|---|---|---|---|---|")
    try:
        for case in args.cases.split(","):
            shape, command = case.split(":")
            counts = []
            for n in (small, large):
                d = os.path.join(work, f"{shape}-{command}-{n}")
                os.makedirs(d)
                with open(os.path.join(d, "main.tik.hcl"), "w") as f:
                    f.write(tik_config(shape, n))
                # What the command starts from: no state, or the applied one.
                if command == "no-op":
                    subprocess.run([args.tik, "apply", "--auto-approve"], cwd=d, check=True,
                                   stdout=subprocess.DEVNULL)
                counts.append(instructions(args.tik, COMMANDS[command], d))
            a, b = counts
            print(f"| {shape} | {command} | {a / 1e9:.2f} G | {b / 1e9:.2f} G | {b / a:.1f}x |",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
