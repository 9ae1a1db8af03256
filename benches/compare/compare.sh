#!/usr/bin/env bash
# A suite (TPC-H by default): Sluice against DuckDB, Polars and DataFusion (Python) on the
# same Parquet files, one engine at a time, the same number of threads, best of 3 hot runs
# per query in one process. Prints a markdown table of per-query times and ratios.
#
#   benches/compare/compare.sh [SF] [WORKDIR]
#
# SUITE (tpch, webanalytics or tpcds; default tpch) and PROJECT (a project prepare.py
# made: another writer's files; default for TPC-H: `sluice fixtures tpch`'s, written by
# Sluice, in WORKDIR/tpch-sfSF) choose the queries and the files.
#
# Environment: SLUICE (the sluice binary; default: a `dist` build of this workspace),
# VENV (default: WORKDIR/venv), THREADS (default: 2), RUNS (default: 3), ENGINES (the
# peers to run, default "duckdb polars datafusion"; e.g. ENGINES=duckdb for a quicker SF 10),
# ROUNDS (default: 1, each engine runs the whole suite once in turn; with ROUNDS=N every
# query runs on every engine in turn, N times, and the medians are compared: see
# interleave.py, the figures BENCHMARKS.md gives since its ninth pass).
set -euo pipefail

SF="${1:-1}"
WORK="${2:-/tmp/sluice-compare}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
THREADS="${THREADS:-2}"
RUNS="${RUNS:-3}"
ROUNDS="${ROUNDS:-1}"
ENGINES="${ENGINES:-duckdb polars datafusion}"
VENV="${VENV:-$WORK/venv}"

if [[ -z "${SLUICE:-}" ]]; then
  (cd "$ROOT" && cargo build --profile dist -p sluice-cli --bin sluice)
  SLUICE="${CARGO_TARGET_DIR:-$ROOT/target}/dist/sluice"
fi

mkdir -p "$WORK"
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet duckdb polars 'datafusion>=55,<56' pyarrow numpy tpchgen-cli tpcgen-cli
fi
PY="$VENV/bin/python"
"$PY" -c 'import duckdb, polars, datafusion, sys; print(f"duckdb {duckdb.__version__}, polars {polars.__version__}, datafusion {datafusion.__version__}", file=sys.stderr)'

SUITE="${SUITE:-tpch}"
if [[ -z "${PROJECT:-}" ]]; then
  [[ "$SUITE" == tpch ]] || { echo "SUITE=$SUITE needs PROJECT (benches/compare/prepare.py)" >&2; exit 2; }
  PROJECT="$WORK/tpch-sf$SF"
  if [[ ! -f "$PROJECT/sluice.toml" ]]; then
    "$SLUICE" fixtures tpch --sf "$SF" --init "$PROJECT"
  fi
fi
STORE="$PROJECT/data/production"
OUT="$WORK/results-$SUITE-$(basename "$PROJECT")"
rm -rf "$OUT"
mkdir -p "$OUT"

if [[ "$ROUNDS" -gt 1 ]]; then
  "$PY" "$HERE/interleave.py" "$OUT" --sluice "$SLUICE" --project "$PROJECT" --sf "$SF" \
    --suite "$SUITE" --engines "$(echo $ENGINES | tr ' ' ',')" --rounds "$ROUNDS" --runs "$RUNS" \
    --threads "$THREADS"
  echo "$SUITE SF $SF ($PROJECT), $THREADS threads, per query the median over $ROUNDS interleaved rounds of the best of $RUNS hot runs ($(nproc) cores, $(uname -m))"
else
  # Q11's FRACTION is 0.0001 / SF (the pipe's default is SF 1's).
  PARAMS=()
  [[ "$SUITE" == tpch ]] && PARAMS=(--param "fraction=$("$PY" -c "print(0.0001 / $SF)")")
  "$SLUICE" -C "$PROJECT" bench --all --env production -n "$RUNS" --warmup 1 --json \
    "${PARAMS[@]}" > "$OUT/sluice.json"
  for engine in $ENGINES; do
    "$PY" "$HERE/peers.py" "$engine" "$STORE" --suite "$SUITE" --sf "$SF" --threads "$THREADS" \
      --runs "$RUNS" > "$OUT/$engine.json"
  done
  echo "$SUITE SF $SF ($PROJECT), $THREADS threads, best of $RUNS hot runs ($(nproc) cores, $(uname -m))"
fi
echo
"$PY" "$HERE/report.py" "$OUT" | tee "$OUT/table.md"
