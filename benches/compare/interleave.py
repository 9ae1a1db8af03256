"""Runs Sluice and its peers on a suite's queries (suites.py) interleaved: for each round, each query,
each engine (in an order that rotates), one process that warms up and times `--runs`
hot runs of that query. Each engine's time for a query is the median over the rounds of
its best run. On a machine whose speed drifts by the minute, engines measured seconds
apart compare better than whole suites measured minutes apart.

    python interleave.py OUT_DIR --sluice BIN --project DIR --sf 1 [--suite tpch]
        [--engines duckdb,polars] [--rounds 3] [--runs 3] [--threads 2] [--queries q01,q06]
        [--sluice-args=--prepared]

Writes OUT_DIR/sluice.json (as `sluice bench --json` does, with those medians),
OUT_DIR/<engine>.json ({query: seconds}) for report.py, and OUT_DIR/rounds.json with
every round's times.
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import suites  # noqa: E402
import tpch_sql  # noqa: E402

HERE = Path(__file__).parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--sf", type=float, required=True)
    ap.add_argument("--engines", default="duckdb,polars,datafusion")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--queries")
    ap.add_argument("--suite", choices=suites.SUITES, default="tpch")
    # More arguments of `sluice bench`, e.g. `--prepared` (planned once, as an endpoint).
    ap.add_argument("--sluice-args", default="")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = Path(args.project) / "data" / "production"
    names = args.queries.split(",") if args.queries else suites.names(args.suite)
    engines = ["sluice"] + [e for e in args.engines.split(",") if e]
    times = {e: {n: [] for n in names} for e in engines}

    def run(engine, name):
        if engine == "sluice":
            params = tpch_sql.params_for(name, args.sf) if args.suite == "tpch" else {}
            cmd = [args.sluice, "-C", args.project, "bench", name, "--env", "production",
                   "-n", str(args.runs), "--warmup", "1", "--json"] + shlex.split(args.sluice_args)
            for k, v in params.items():
                cmd += ["--param", f"{k}={v}"]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"sluice {name}: FAILED {done.stderr.strip()[-200:]}", file=sys.stderr)
                return None
            return json.loads(done.stdout)["pipes"][0]["min_ms"] / 1000
        cmd = [sys.executable, str(HERE / "peers.py"), engine, str(store), "--sf", str(args.sf),
               "--suite", args.suite, "--threads", str(args.threads), "--runs", str(args.runs),
               "--queries", name]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(done.stdout).get(name)

    turn = 0
    for r in range(args.rounds):
        for name in names:
            order = engines[turn % len(engines):] + engines[:turn % len(engines)]
            turn += 1
            for engine in order:
                times[engine][name].append(run(engine, name))
        print(f"round {r + 1} of {args.rounds} done", file=sys.stderr, flush=True)

    def median(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    (out / "rounds.json").write_text(json.dumps(times, indent=1))
    sluice = {"pipes": [{"pipe": n, "min_ms": None if median(times["sluice"][n]) is None
                         else median(times["sluice"][n]) * 1000} for n in names]}
    (out / "sluice.json").write_text(json.dumps(sluice, indent=1))
    for engine in engines[1:]:
        (out / f"{engine}.json").write_text(json.dumps({n: median(times[engine][n]) for n in names}))


if __name__ == "__main__":
    main()
