#!/usr/bin/env python3
"""Times two shell commands in turn (A B A B ...) after a warm-up of each, and writes
every run's wall time and the pair-by-pair difference A - B as JSON: a difference taken
pair by pair holds when the machine's speed drifts during the run.

Usage: paired.py --runs N --out FILE.json 'COMMAND A' 'COMMAND B'
"""
import argparse, json, statistics, subprocess, sys, time

p = argparse.ArgumentParser()
p.add_argument("--runs", type=int, default=20)
p.add_argument("--out", required=True)
p.add_argument("a")
p.add_argument("b")
args = p.parse_args()


def once(cmd):
    started = time.perf_counter()
    r = subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    took = time.perf_counter() - started
    if r.returncode != 0:
        sys.exit(f"paired.py: `{cmd}` failed ({r.returncode}):\n{r.stderr.decode(errors='replace')}")
    return took


once(args.a)
once(args.b)
a, b = [], []
for _ in range(args.runs):
    a.append(once(args.a))
    b.append(once(args.b))
diff = [x - y for x, y in zip(a, b)]
json.dump({"a": a, "b": b, "diff": diff, "median_diff": statistics.median(diff)}, open(args.out, "w"))
