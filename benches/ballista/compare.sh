#!/usr/bin/env bash
# TPC-H: the embedded engine against a local Ballista cluster on the same Parquet files.
# `sluice bench --all` runs the 22 queries in the tpch project's production environment
# (embedded) and in an environment `cluster` over the same store whose engine is a
# Ballista scheduler with EXECUTORS executors of SLOTS task slots each, all in one local
# process (examples/ballista_cluster.rs). Prints both JSON reports' per-query medians.
#
#   benches/ballista/compare.sh [SF] [WORKDIR]
#
# Environment: EXECUTORS (default 2), SLOTS (default 1), RUNS (default 3).
set -euo pipefail

SF="${1:-1}"
WORK="${2:-/tmp/sluice-ballista}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
EXECUTORS="${EXECUTORS:-2}"
SLOTS="${SLOTS:-1}"
RUNS="${RUNS:-3}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

# One build of both (one feature resolution: one build of DataFusion, not two).
(cd "$ROOT" && cargo build --release --workspace --bins --example ballista_cluster \
  --features sluice-suite/ballista,sluice-cli/ballista)
SLUICE="$TARGET/release/sluice"
CLUSTER="$TARGET/release/examples/ballista_cluster"

mkdir -p "$WORK"
PROJECT="$WORK/tpch-sf$SF"
if [[ ! -f "$PROJECT/sluice.toml" ]]; then
  "$SLUICE" fixtures tpch --sf "$SF" --init "$PROJECT"
fi

"$CLUSTER" --executors "$EXECUTORS" --slots "$SLOTS" >"$WORK/cluster.url" 2>"$WORK/cluster.log" &
CLUSTER_PID=$!
trap 'kill $CLUSTER_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [[ -s "$WORK/cluster.url" ]] && break
  sleep 0.1
done
URL="$(head -n1 "$WORK/cluster.url")"
echo "cluster: $URL ($EXECUTORS executors x $SLOTS slots)" >&2

# The cluster environment (rewritten on every run: the scheduler's port changes).
sed -i '/^# ballista-bench/,$d' "$PROJECT/sluice.toml"
cat >>"$PROJECT/sluice.toml" <<TOML
# ballista-bench: production's store, run on the local cluster
[environments.cluster]
data = "data/production"
engine = { kind = "ballista", url = "$URL" }
TOML

FRACTION=$(python3 -c "print(0.0001 / $SF)")
for env in production cluster; do
  "$SLUICE" -C "$PROJECT" bench --all --env "$env" -n "$RUNS" --warmup 1 --json \
    --param "fraction=$FRACTION" >"$WORK/$env-sf$SF.json"
done

python3 - "$WORK/production-sf$SF.json" "$WORK/cluster-sf$SF.json" <<'PY'
import json, sys
emb = {p["pipe"]: p for p in json.load(open(sys.argv[1]))["pipes"]}
bal = {p["pipe"]: p for p in json.load(open(sys.argv[2]))["pipes"]}
print("| query | embedded median ms | Ballista median ms | ratio |")
print("| --- | ---: | ---: | ---: |")
te = tb = 0.0
for q in sorted(emb):
    e, b = emb[q]["median_ms"], bal[q]["median_ms"]
    te += e; tb += b
    print(f"| {q} | {e:.0f} | {b:.0f} | {b / e:.2f}x |")
print(f"| **total** | **{te:.0f}** | **{tb:.0f}** | **{tb / te:.2f}x** |")
PY
