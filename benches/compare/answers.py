"""Writes fixtures/tpch/answers/qNN.csv: DuckDB's answer to each TPC-H pipe on the
Parquet files of a Sluice store (generated with `sluice fixtures tpch --sf 0.1`).

    python answers.py STORE_DIR --sf 0.1
"""

import argparse
import csv
import datetime
import decimal
import sys
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
import tpch_sql  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "fixtures" / "tpch" / "answers"


def cell(v):
    if v is None:
        return "null"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (datetime.date, decimal.Decimal)):
        return str(v)
    return str(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("--sf", type=float, required=True)
    args = ap.parse_args()
    con = duckdb.connect()
    for t in tpch_sql.TABLES:
        con.execute(
            f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{args.store}/{t}/**/*.parquet')"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    for name in tpch_sql.pipe_names():
        sql = tpch_sql.pipe_sql(name, tpch_sql.params_for(name, args.sf))
        cur = con.execute(sql)
        header = [d[0] for d in cur.description]
        rows = cur.fetchall()
        with open(OUT / f"{name}.csv", "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            for r in rows:
                w.writerow([cell(v) for v in r])
        print(f"{name}: {len(rows)} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
