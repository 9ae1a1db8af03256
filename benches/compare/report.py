"""Prints the markdown table of a comparison run: per-query best times of each engine
and Sluice's ratio to each peer.

    python report.py RESULTS_DIR
"""

import json
import math
import sys
from pathlib import Path

ALL_PEERS = [("duckdb", "DuckDB"), ("polars", "Polars"), ("datafusion", "DataFusion-py")]


def main():
    d = Path(sys.argv[1])
    bench = json.loads((d / "sluice.json").read_text())
    sluice = {p["pipe"]: None if p["min_ms"] is None else p["min_ms"] / 1000
              for p in bench["pipes"]}
    # The peers of this run (compare.sh's ENGINES): those with a result file.
    ran_peers = [(k, label) for k, label in ALL_PEERS if (d / f"{k}.json").exists()]
    peers = {k: json.loads((d / f"{k}.json").read_text()) for k, _ in ran_peers}
    names = sorted(sluice)
    failed = [n for n in names if sluice[n] is None]
    if failed:
        print(f"Sluice failed {', '.join(failed)}: left out of the table.\n")
        names = [n for n in names if sluice[n] is not None]

    def fmt(v):
        return "n/a" if v is None else f"{v:.3f}"

    def ratio(a, b):
        return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"

    head = ["query", "Sluice (s)"] + [f"{label} (s)" for _, label in ran_peers]
    head += [f"Sluice/{label}" for _, label in ran_peers]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for n in names:
        row = [n, fmt(sluice[n])] + [fmt(peers[k].get(n)) for k, _ in ran_peers]
        row += [ratio(sluice[n], peers[k].get(n)) for k, _ in ran_peers]
        print("| " + " | ".join(row) + " |")
    total = sum(sluice[n] for n in names)
    row = ["**total**", f"**{total:.3f}**"]
    totals = {}
    for k, _ in ran_peers:
        vals = [peers[k].get(n) for n in names]
        totals[k] = None if any(v is None for v in vals) else sum(vals)
        row.append(fmt(totals[k]))
    row += [ratio(total, totals[k]) for k, _ in ran_peers]
    print("| " + " | ".join(row) + " |")
    # Over the queries every engine ran, so a peer's failures don't flatter it.
    for k, label in ran_peers:
        ran = [n for n in names if peers[k].get(n) is not None]
        if 0 < len(ran) < len(names):
            s = sum(sluice[n] for n in ran)
            p = sum(peers[k][n] for n in ran)
            print(
                f"\n{label} ran {len(ran)} of {len(names)} queries; over those, "
                f"Sluice {s:.3f} s vs {label} {p:.3f} s (ratio {s / p:.2f})."
            )
    if "duckdb" not in peers:
        return
    dd = [sluice[n] / peers["duckdb"][n] for n in names if peers["duckdb"].get(n)]
    if dd:
        worst = max(zip(dd, [n for n in names if peers["duckdb"].get(n)]))
        print(f"\nSlowest query relative to DuckDB: {worst[1]} at {worst[0]:.2f}x.")
        geo = math.exp(sum(math.log(r) for r in dd) / len(dd))
        over = sum(1 for r in dd if r > 2)
        print(f"Geometric mean of the per-query ratios to DuckDB: {geo:.2f}; above 2x: {over}.")


if __name__ == "__main__":
    main()
