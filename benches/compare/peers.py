"""Runs the TPC-H pipes' SQL on one peer engine over a Sluice store's Parquet files and
prints a JSON object {query: best seconds} on standard output.

    python peers.py duckdb|polars|datafusion STORE_DIR --sf 1 [--threads 2] [--runs 3] [--queries q01,q06]

Each query runs once to warm up, then `--runs` times; the best run counts (hot runs in
one process). A query the engine cannot run is reported as null, with its error on
standard error.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import tpch_sql  # noqa: E402


def duckdb_runner(store, threads):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    for t in tpch_sql.TABLES:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{store}/{t}/*.parquet')")
    return lambda sql: con.execute(sql).fetchall()


def polars_runner(store, threads):
    # POLARS_MAX_THREADS is read when polars is imported (set by main).
    import polars as pl

    ctx = pl.SQLContext()
    for t in tpch_sql.TABLES:
        ctx.register(t, pl.scan_parquet(f"{store}/{t}/*.parquet"))
    return lambda sql: ctx.execute(sql).collect()


def datafusion_runner(store, threads):
    import datafusion

    config = datafusion.SessionConfig().with_target_partitions(threads)
    ctx = datafusion.SessionContext(config)
    for t in tpch_sql.TABLES:
        ctx.register_parquet(t, f"{store}/{t}/")
    return lambda sql: ctx.sql(sql).collect()


RUNNERS = {"duckdb": duckdb_runner, "polars": polars_runner, "datafusion": datafusion_runner}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("engine", choices=sorted(RUNNERS))
    ap.add_argument("store")
    ap.add_argument("--sf", type=float, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--queries", help="comma-separated pipe names (default: all 22)")
    args = ap.parse_args()
    if args.engine == "polars":
        os.environ["POLARS_MAX_THREADS"] = str(args.threads)
    run = RUNNERS[args.engine](args.store, args.threads)
    best = {}
    names = args.queries.split(",") if args.queries else tpch_sql.pipe_names()
    for name in names:
        sql = tpch_sql.pipe_sql(name, tpch_sql.params_for(name, args.sf))
        try:
            run(sql)
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                run(sql)
                times.append(time.perf_counter() - started)
            best[name] = min(times)
            print(f"{args.engine} {name}: {best[name] * 1000:.1f} ms", file=sys.stderr)
        except Exception as e:  # an engine that cannot run a query: reported, not fatal
            best[name] = None
            print(f"{args.engine} {name}: FAILED {str(e).splitlines()[0][:200]}", file=sys.stderr)
    print(json.dumps(best))


if __name__ == "__main__":
    main()
