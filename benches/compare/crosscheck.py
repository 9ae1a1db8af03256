"""Cross-checks a suite's answers: every query on Sluice (`sluice run … --format csv`)
and on a peer (DuckDB by default) over the same files, row by row.

    python crosscheck.py SUITE PROJECT_DIR --sluice BIN [--peer duckdb] [--sf 1]
        [--queries q01,q02] [--out DIR] [--official]

PROJECT_DIR is a Sluice project of the suite whose production store holds the data
(fixtures/tpch, webanalytics/, tpcds/ with data/production/). Cells match as text, or
as numbers within a relative 1e-6 (engines average and divide decimals at different
scales); rows are compared in order where the query's last ORDER BY defines it, else
sorted. `--official` (TPC-H at SF 1) compares Sluice's rows with the official answers
instead (fixtures/tpch/answers-sf1: TPC-H's dbgen answers, as the tpchgen crate ships
them, rounded to cents: numbers match within 0.01; strings are trimmed, and a cell the
file cut to its column's width matches as a prefix). A query whose ORDER BY leaves ties may list tied rows differently (and a LIMIT
keep different ones): such a difference is reported as `ties` when the rows match
sorted. Prints one line per query and a summary; exits 1 if any query differs.
"""

import argparse
import csv
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import suites  # noqa: E402

HERE = Path(__file__).parent


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def number(s):
    if s in ("true", "false", "True", "False"):
        return s.lower()
    try:
        return float(s)
    except ValueError:
        return s


ABSOLUTE = 0.0


TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d(?:\.\d+)?)Z?$")


def normal(s):
    """A timestamp as `YYYY-MM-DD HH:MM:SS` (Sluice's CSV writes ISO 8601's `T`)."""
    m = TIMESTAMP.match(s)
    return f"{m.group(1)} {m.group(2)}" if m else s


def cells_match(a, b):
    a, b = normal(a), normal(b)
    if ABSOLUTE:
        # The official answer files trim strings and cut some cells to their column's
        # width (q11's part keys, q02's comments): such a cell matches as a prefix.
        a, b = a.strip(), b.strip()
        if a and b.startswith(a) and not isinstance(number(a), float):
            return True
        if a and b.startswith(a) and "." not in a and len(b) > len(a):
            return True
    a, b = number(a), number(b)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= max(ABSOLUTE, 1e-6 * max(abs(a), abs(b), 1.0))
    return a == b


def rows_match(xs, ys):
    return len(xs) == len(ys) and all(
        len(x) == len(y) and all(cells_match(a, b) for a, b in zip(x, y)) for x, y in zip(xs, ys)
    )


def key(row):
    return [(0, v) if isinstance(v, float) else (1, str(v)) for v in map(number, map(normal, row))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("suite", choices=suites.SUITES)
    ap.add_argument("project")
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--peer", default="duckdb")
    ap.add_argument("--sf", type=float, default=1.0)
    ap.add_argument("--queries")
    ap.add_argument("--out", default="/tmp/sluice-crosscheck")
    ap.add_argument("--official", action="store_true")
    args = ap.parse_args()
    global ABSOLUTE
    official = HERE.parents[1] / "fixtures" / "tpch" / "answers-sf1"
    if args.official:
        if args.suite != "tpch" or args.sf != 1:
            sys.exit("--official: TPC-H at SF 1 only")
        ABSOLUTE = 0.01
        args.peer = "official"
    out = Path(args.out)
    names = args.queries.split(",") if args.queries else suites.names(args.suite)
    store = Path(args.project) / "data" / "production"
    peer_dir = out / args.peer
    if args.official:
        peer_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            lines = (official / f"{name}.tbl").read_text().splitlines()
            with open(peer_dir / f"{name}.csv", "w", newline="") as f:
                csv.writer(f).writerows(line.split("|") for line in lines)
    else:
        subprocess.run(
            [sys.executable, str(HERE / "peers.py"), args.peer, str(store),
             "--suite", args.suite, "--sf", str(args.sf), "--runs", "0",
             "--queries", ",".join(names), "--rows-to", str(peer_dir)],
            check=True, stdout=subprocess.DEVNULL,
        )
    sluice_dir = out / "sluice"
    sluice_dir.mkdir(parents=True, exist_ok=True)
    differ = 0
    for name in names:
        cmd = [args.sluice, "-C", args.project, "run", name, "--env", "production",
               "--format", "csv", "-q", "-o", str(sluice_dir / f"{name}.csv")]
        if args.suite == "tpch" and name == "q11":
            cmd += ["--param", f"fraction={0.0001 / args.sf}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        peer_file = peer_dir / f"{name}.csv"
        if done.returncode != 0:
            differ += 1
            print(f"{name}: Sluice failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        if not peer_file.exists():
            print(f"{name}: {args.peer} failed (see its errors above); Sluice ran")
            differ += 1
            continue
        _, expected = read(peer_file)
        _, actual = read(sluice_dir / f"{name}.csv")
        if suites.ordered(args.suite, name) and rows_match(expected, actual):
            print(f"{name}: same {len(actual)} rows")
        elif rows_match(sorted(expected, key=key), sorted(actual, key=key)):
            how = "ties" if suites.ordered(args.suite, name) else "unordered"
            print(f"{name}: same {len(actual)} rows ({how})")
        else:
            differ += 1
            print(f"{name}: DIFFERS: {len(expected)} rows from {args.peer}, {len(actual)} from Sluice")
            for e, a in list(zip(expected, actual))[:3]:
                if not rows_match([e], [a]):
                    print(f"    {args.peer}: {e}\n    sluice: {a}")
    print(f"{len(names) - differ} of {len(names)} queries match {args.peer}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
