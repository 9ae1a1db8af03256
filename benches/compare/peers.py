"""Runs a suite's queries (suites.py) on one peer engine over a store's Parquet files and
prints a JSON object {query: best seconds} on standard output.

    python peers.py duckdb|polars|datafusion STORE_DIR --sf 1 [--suite tpch] [--threads 2]
        [--runs 3] [--queries q01,q06] [--rows-to DIR]

Each query runs once to warm up, then `--runs` times; the best run counts (hot runs in
one process). A query the engine cannot run is reported as null, with its error on
standard error. `--rows-to DIR` also writes each query's rows to DIR/NAME.csv (for
crosscheck.py). DuckDB runs TPC-DS with `integer_division = true` (`/` of integers
truncates, as in DataFusion and Sluice).
"""

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import suites  # noqa: E402


def duckdb_runner(suite, store, threads):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    if suite == "tpcds":
        con.execute("SET integer_division = true")
    for t, (files, hive) in suites.tables(suite, store).items():
        options = ", hive_partitioning = true, hive_types_autocast = false" if hive else ""
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{files}'{options})")

    def run(sql):
        cur = con.execute(sql)
        return [d[0] for d in cur.description], cur.fetchall()

    return run


def polars_runner(suite, store, threads):
    # POLARS_MAX_THREADS is read when polars is imported (set by main).
    import polars as pl

    ctx = pl.SQLContext()
    for t, (files, hive) in suites.tables(suite, store).items():
        if hive:
            frame = pl.scan_parquet(files, hive_partitioning=True, try_parse_hive_dates=False)
        else:
            frame = pl.scan_parquet(files)
        ctx.register(t, frame)

    def run(sql):
        df = ctx.execute(sql).collect()
        return df.columns, df.rows()

    return run


def datafusion_runner(suite, store, threads):
    import datafusion
    import pyarrow as pa

    config = datafusion.SessionConfig().with_target_partitions(threads)
    ctx = datafusion.SessionContext(config)
    for t, (files, hive) in suites.tables(suite, store).items():
        folder = files.split("/*")[0] + "/"
        if hive:
            ctx.register_parquet(t, folder, table_partition_cols=[("day", pa.string())])
        else:
            ctx.register_parquet(t, folder)

    def run(sql):
        table = ctx.sql(sql).to_arrow_table()
        return table.column_names, [tuple(r.values()) for r in table.to_pylist()]

    return run


RUNNERS = {"duckdb": duckdb_runner, "polars": polars_runner, "datafusion": datafusion_runner}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("engine", choices=sorted(RUNNERS))
    ap.add_argument("store")
    ap.add_argument("--sf", type=float, default=1.0)
    ap.add_argument("--suite", choices=suites.SUITES, default="tpch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--queries", help="comma-separated query names (default: the suite's)")
    ap.add_argument("--rows-to", help="write each query's rows to DIR/NAME.csv")
    args = ap.parse_args()
    if args.engine == "polars":
        os.environ["POLARS_MAX_THREADS"] = str(args.threads)
    run = RUNNERS[args.engine](args.suite, args.store, args.threads)
    best = {}
    names = args.queries.split(",") if args.queries else suites.names(args.suite)
    for name in names:
        sql = suites.sql(args.suite, name, args.sf)
        try:
            columns, rows = run(sql)
            if args.rows_to:
                Path(args.rows_to).mkdir(parents=True, exist_ok=True)
                with open(Path(args.rows_to) / f"{name}.csv", "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(columns)
                    w.writerows(["" if v is None else v for v in r] for r in rows)
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                run(sql)
                times.append(time.perf_counter() - started)
            best[name] = min(times) if times else None
            if best[name] is not None:
                print(f"{args.engine} {name}: {best[name] * 1000:.1f} ms", file=sys.stderr)
        except Exception as e:  # an engine that cannot run a query: reported, not fatal
            best[name] = None
            print(f"{args.engine} {name}: FAILED {str(e).splitlines()[0][:200]}", file=sys.stderr)
    print(json.dumps(best))


if __name__ == "__main__":
    main()
