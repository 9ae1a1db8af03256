"""The sales_calls endpoints, Sluice against DuckDB on the same Parquet files, interleaved.

    VENV/bin/python benches/compare/endpoints.py SLUICE PROJECT [ROUNDS] [RUNS]

PROJECT is a `sluice init` project (its production store is read). Each round runs, in
turn, `sluice bench PIPE --env production -n RUNS --warmup 5 --json` (one warm session,
as `sluice bench` always runs) under each Sluice variant, then the same SQL in DuckDB
(2 threads, one warm connection, RUNS timed runs after 5 unmeasured), and takes each
side's median. The variants: each run planned (as `sluice run` and `sluice query` do),
and `--prepared` (planned once and run again, as `sluice serve` answers calls; DuckDB's
`execute` plans every time). Prints the medians of the rounds' medians, side by side.
Also run on a copy of the production store rewritten by pyarrow with its default
settings (one row group per file), when `--pyarrow` is given.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import duckdb

THREADS = 2

# The pipes' SQL with their default parameters, as DuckDB reads the store's files.
SQL = {
    "top_reps": """
WITH won AS (
  SELECT rep_id, count(*) AS won, sum(amount) AS revenue
  FROM read_parquet('{calls}')
  WHERE outcome = 'won' AND started_at >= DATE '2024-01-01'
  GROUP BY rep_id)
SELECT r.name, r.team, w.won, w.revenue
FROM won w JOIN read_parquet('{reps}') r USING (rep_id)
ORDER BY w.won DESC, r.name
LIMIT 10""",
    "account_health": """
WITH per_account AS (
  SELECT account_id, count(*) AS calls,
         count(*) FILTER (WHERE outcome = 'won') AS won,
         coalesce(sum(amount), 0) AS revenue
  FROM read_parquet('{calls}')
  GROUP BY account_id)
SELECT a.account_id, a.name, a.region, a.tier, p.calls, p.won,
       round(p.won * 1.0 / p.calls, 3) AS win_rate, p.revenue
FROM per_account p JOIN read_parquet('{accounts}') a USING (account_id)
WHERE p.calls >= 5
ORDER BY p.revenue DESC, a.account_id""",
}

# name: (extra arguments of `sluice bench`, extra environment)
VARIANTS = {
    "sluice": ([], {}),
    "sluice --prepared": (["--prepared"], {}),
}


def store_files(store, source):
    return os.path.join(store, source, "**", "*.parquet")


def sluice_median(sluice, project, pipe, runs, variant):
    extra_args, extra_env = variant
    env = dict(os.environ, **extra_env)
    out = subprocess.run(
        [sluice, "bench", pipe, "--env", "production", "-n", str(runs), "--warmup", "5", "--json"]
        + extra_args,
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)["pipes"][0]["median_ms"]


def duckdb_median(con, sql, runs):
    for _ in range(5):
        con.execute(sql).fetchall()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        con.execute(sql).fetchall()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def pyarrow_copy(project):
    """A copy of the project whose production store pyarrow rewrote with its defaults."""
    import pyarrow.parquet as pq

    copy = project.rstrip("/") + "-pyarrow"
    if os.path.exists(copy):
        return copy
    shutil.copytree(project, copy)
    store = os.path.join(copy, "data", "production")
    for source in ("calls", "reps", "accounts"):
        folder = os.path.join(store, source)
        table = pq.read_table(folder)
        shutil.rmtree(folder)
        os.makedirs(folder)
        pq.write_table(table, os.path.join(folder, "part-0.parquet"))
    return copy


def main():
    sluice, project = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3].isdigit() else 5
    runs = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4].isdigit() else 30
    if "--pyarrow" in sys.argv:
        project = pyarrow_copy(project)
    store = os.path.join(project, "data", "production")
    con = duckdb.connect()
    con.execute(f"SET threads = {THREADS}")
    results = {}
    for pipe, sql in SQL.items():
        sql = sql.format(
            calls=store_files(store, "calls"),
            reps=store_files(store, "reps"),
            accounts=store_files(store, "accounts"),
        )
        for _ in range(rounds):
            for name, variant in VARIANTS.items():
                results.setdefault((pipe, name), []).append(
                    sluice_median(sluice, project, pipe, runs, variant)
                )
            results.setdefault((pipe, "duckdb"), []).append(duckdb_median(con, sql, runs))
    print(f"{project}: {rounds} rounds x {runs} runs, medians of the rounds' medians (ms)")
    ratios = [f"{n} / DuckDB" for n in VARIANTS]
    print("| pipe | " + " | ".join(list(VARIANTS) + ["DuckDB"] + ratios) + " |")
    print("| --- |" + " ---: |" * (2 * len(VARIANTS) + 1))
    for pipe in SQL:
        cells = [statistics.median(results[(pipe, n)]) for n in VARIANTS]
        duck = statistics.median(results[(pipe, "duckdb")])
        print(
            f"| {pipe} | "
            + " | ".join(f"{c:.2f}" for c in cells)
            + f" | {duck:.2f} | "
            + " | ".join(f"{c / duck:.2f}" for c in cells)
            + " |"
        )


if __name__ == "__main__":
    main()
