"""Prepares a suite's data as another writer writes it, and a Sluice project over it.

    python prepare.py SUITE WRITER PROJECT_DIR [--sf 1] [--sluice-root REPO]

Suites and writers:
- `tpch tpchgen`: `tpchgen-cli parquet -s SF` with its defaults (snappy, ~7 MiB row
  groups, one file per table); `tpch duckdb`: those tables written again by DuckDB's
  `COPY … (FORMAT parquet)` defaults (snappy, 122,880-row groups); `tpch pyarrow`: by
  `pyarrow.parquet.write_table` defaults (snappy, 1 Mi-row groups, no page index).
- `webanalytics pyarrow`: webanalytics/generate.py (1.5 M events × SF, daily hive
  folders, 4,096-row groups).
- `tpcds tpcgen`: `tpcgen-cli tpcds parquet -s SF` with its defaults.

Sluice reads a source from a folder: a generator's `TABLE.parquet` is moved, bytes as
written, to `TABLE/TABLE.parquet`. The project: the suite's sluice.toml and pipes
(fixtures/tpch's for TPC-H, with its production store unprotected so the working copy
runs), the data in `PROJECT_DIR/data/production`. Needs the venv of compare.sh
(duckdb, pyarrow, numpy, tpchgen-cli, tpcgen-cli).
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = Path(sys.executable).parent


def folders(out):
    """Moves each `TABLE.parquet` in `out` into `out/TABLE/`."""
    for f in sorted(out.glob("*.parquet")):
        folder = out / f.stem
        folder.mkdir(exist_ok=True)
        f.rename(folder / f.name)


def rewrite(src, dst, writer):
    import duckdb
    import pyarrow.parquet as pq

    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        (dst / folder.name).mkdir(parents=True, exist_ok=True)
        target = dst / folder.name / f"{folder.name}.parquet"
        if writer == "duckdb":
            con = duckdb.connect()
            con.execute(
                f"COPY (SELECT * FROM read_parquet('{folder}/*.parquet')) TO '{target}' (FORMAT parquet)"
            )
        else:
            pq.write_table(pq.read_table(folder), target)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("suite", choices=["tpch", "webanalytics", "tpcds"])
    ap.add_argument("writer", choices=["tpchgen", "duckdb", "pyarrow", "tpcgen"])
    ap.add_argument("project")
    ap.add_argument("--sf", type=float, default=1.0)
    args = ap.parse_args()
    project = Path(args.project)
    store = project / "data" / "production"
    if store.exists():
        sys.exit(f"{store} exists: remove it first")
    store.mkdir(parents=True)
    (project / "pipes").mkdir(exist_ok=True)
    sf = f"{args.sf:g}"
    if args.suite == "tpch":
        if args.writer not in ("tpchgen", "duckdb", "pyarrow"):
            sys.exit("TPC-H writers: tpchgen, duckdb, pyarrow")
        toml = (ROOT / "fixtures/tpch/sluice.toml").read_text()
        (project / "sluice.toml").write_text(toml.replace("protected = true\n", ""))
        for p in (ROOT / "fixtures/tpch/pipes").glob("*.toml"):
            shutil.copy(p, project / "pipes" / p.name)
        raw = store if args.writer == "tpchgen" else project / "data" / "tpchgen"
        raw.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(BIN / "tpchgen-cli"), "parquet", "-s", sf, "-o", str(raw)], check=True)
        folders(raw)
        if args.writer != "tpchgen":
            rewrite(raw, store, args.writer)
            shutil.rmtree(raw)
    elif args.suite == "webanalytics":
        for name in ["sluice.toml"]:
            shutil.copy(HERE / "webanalytics" / name, project / name)
        for p in (HERE / "webanalytics/pipes").glob("*.toml"):
            shutil.copy(p, project / "pipes" / p.name)
        events = int(1_500_000 * args.sf)
        subprocess.run([sys.executable, str(HERE / "webanalytics/generate.py"), str(store),
                        "--events", str(events)], check=True)
    else:
        shutil.copy(HERE / "tpcds/sluice.toml", project / "sluice.toml")
        for p in (HERE / "tpcds/pipes").glob("*.toml"):
            shutil.copy(p, project / "pipes" / p.name)
        subprocess.run([str(BIN / "tpcgen-cli"), "tpcds", "parquet", "-s", sf, "-o", str(store)],
                       check=True)
        folders(store)
        # tpcgen-cli writes dbgen_version too: not a table the queries read.
        shutil.rmtree(store / "dbgen_version", ignore_errors=True)
    print(f"{project}: {args.suite} as {args.writer} writes it, SF {sf}")


if __name__ == "__main__":
    main()
