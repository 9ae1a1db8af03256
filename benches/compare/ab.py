"""A/B of Sluice settings or builds on a suite, interleaved: for each round and query,
variant A and variant B in turn (the order alternating), each one `sluice bench QUERY -n
RUNS --warmup 1` process; per query the median over the rounds of each variant's best run.

    python ab.py PROJECT_DIR --sluice BIN --b 'VAR=value [VAR=value…]' [--a '…']
        [--sluice-b OTHER_BIN] [--suite tpch] [--sf 1] [--rounds 3] [--runs 3]
        [--queries q01,q06]

A and B are environment assignments (`DATAFUSION_*`, `SLUICE_SKIP_RULES`); each defaults
to none (today's defaults). With `--sluice-b`, B runs that binary (a build against the one
before it). Prints per query A, B and B/A, then the totals and their ratio.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import suites  # noqa: E402
import tpch_sql  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("project")
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--a", default="")
    ap.add_argument("--b", default="")
    ap.add_argument("--sluice-b", help="the binary variant B runs (default: --sluice)")
    ap.add_argument("--suite", choices=suites.SUITES, default="tpch")
    ap.add_argument("--sf", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--queries")
    args = ap.parse_args()
    names = args.queries.split(",") if args.queries else suites.names(args.suite)
    variants = {"A": args.a, "B": args.b}
    times = {v: {n: [] for n in names} for v in variants}

    def run(variant, name):
        env = dict(os.environ)
        for assignment in variants[variant].split():
            key, _, value = assignment.partition("=")
            env[key] = value
        binary = args.sluice_b if variant == "B" and args.sluice_b else args.sluice
        cmd = [binary, "-C", args.project, "bench", name, "--env", "production",
               "-n", str(args.runs), "--warmup", "1", "--json"]
        if args.suite == "tpch":
            for k, v in tpch_sql.params_for(name, args.sf).items():
                cmd += ["--param", f"{k}={v}"]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            print(f"{variant} {name}: failed: {done.stderr.strip()[-200:]}", file=sys.stderr)
            return None
        return json.loads(done.stdout)["pipes"][0]["min_ms"] / 1000

    turn = 0
    for r in range(args.rounds):
        for name in names:
            order = ["A", "B"] if turn % 2 == 0 else ["B", "A"]
            turn += 1
            for v in order:
                times[v][name].append(run(v, name))
        print(f"round {r + 1} of {args.rounds} done", file=sys.stderr, flush=True)

    def median(values):
        values = [x for x in values if x is not None]
        return statistics.median(values) if values else None

    b = " ".join(x for x in [args.b, args.sluice_b and f"binary {args.sluice_b}"] if x)
    print(f"A: {args.a or '(defaults)'}; B: {b or '(defaults)'}; {args.rounds} rounds, best of {args.runs}")
    print("| query | A (s) | B (s) | B/A |")
    print("| --- | --- | --- | --- |")
    total_a = total_b = 0.0
    for n in names:
        a, b = median(times["A"][n]), median(times["B"][n])
        if a is None or b is None:
            print(f"| {n} | {a} | {b} | n/a |")
            continue
        total_a += a
        total_b += b
        print(f"| {n} | {a:.3f} | {b:.3f} | {b / a:.2f} |")
    print(f"| **total** | **{total_a:.3f}** | **{total_b:.3f}** | **{total_b / total_a:.3f}** |")


if __name__ == "__main__":
    main()
