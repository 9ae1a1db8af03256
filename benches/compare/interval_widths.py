"""How much wider (or narrower) one build's 95% intervals are than another's.

    python benches/compare/interval_widths.py OLD_SLUICE NEW_SLUICE PROJECT [-- ARGS...]

Runs `sluice run PIPE --estimate --format csv` with both builds for each of the
sales_calls example's pipes, pairs their rows in output order, and prints per pipe the
number of bounded intervals and the median, 90th percentile and largest ratio of the new
width (x_high - x_low) to the old, and the share widened by more than 5%. ARGS after
`--` are given to every run (e.g. `-- --sample-method key --sample 0.1`).
"""

import csv
import statistics
import subprocess
import sys

PIPES = ["top_reps", "daily_outcomes", "account_health"]


def rows(binary, project, pipe, extra):
    out = subprocess.run(
        [binary, "-C", project, "run", pipe, "--estimate", "--format", "csv", *extra],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return list(csv.DictReader(out.splitlines()))


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        extra = args[args.index("--") + 1 :]
        args = args[: args.index("--")]
    if len(args) != 3:
        sys.exit(__doc__)
    old, new, project = args
    for pipe in PIPES:
        ratios = []
        for a, b in zip(rows(old, project, pipe, extra), rows(new, project, pipe, extra)):
            for column in a:
                if not column.endswith("_low"):
                    continue
                base = column[: -len("_low")]
                try:
                    before = float(a[base + "_high"]) - float(a[column])
                    after = float(b[base + "_high"]) - float(b[column])
                except (KeyError, ValueError):
                    continue
                if before > 0:
                    ratios.append(after / before)
        if len(ratios) < 2:
            print(f"{pipe}: no bounded intervals")
            continue
        p90 = statistics.quantiles(ratios, n=10)[-1]
        widened = sum(r > 1.05 for r in ratios) / len(ratios)
        print(
            f"{pipe}: {len(ratios)} intervals, width new/old median {statistics.median(ratios):.3f}, "
            f"p90 {p90:.3f}, max {max(ratios):.3f}, widened >5%: {widened:.0%}"
        )


if __name__ == "__main__":
    main()
