"""What `--estimate` costs a user: whole `sluice run` processes, plain against estimated.

    python benches/compare/estimate_wall.py SLUICE PROJECT [ROUNDS] [RUNS] PIPE... [-- ARGS...]

Each round runs, for each pipe in turn, RUNS timed `sluice -C PROJECT run PIPE` (after 2
unmeasured) and then as many with `--estimate`, each a new process as a user's command
is (start, project load, listing, planning, the run, printing as CSV to /dev/null), in
the project's default environment (staging, sampled). Prints per pipe and variant each
round's median wall time, the median of those, and the ratio estimated / plain. ARGS
after `--` are given to every run, plain and estimated (e.g. `-- --sample-method key
--sample 0.1` for another sample than the environment's).
`sluice bench --estimate` measures the run alone, in one warm process (BENCHMARKS.md).
"""

import statistics
import subprocess
import sys
import time


def wall(cmd, runs):
    times = []
    for i in range(runs + 2):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i >= 2:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    binary, project = sys.argv[1], sys.argv[2]
    args = sys.argv[3:]
    extra = []
    if "--" in args:
        extra = args[args.index("--") + 1 :]
        args = args[: args.index("--")]
    rounds = int(args.pop(0)) if args and args[0].isdigit() else 3
    runs = int(args.pop(0)) if args and args[0].isdigit() else 10
    pipes = args
    medians = {}
    for _ in range(rounds):
        for pipe in pipes:
            for flags in ([], ["--estimate"]):
                cmd = [binary, "-C", project, "run", pipe, *flags, *extra, "--format", "csv"]
                medians.setdefault((pipe, bool(flags)), []).append(wall(cmd, runs))
    print("| pipe | plain (ms) | `--estimate` (ms) | ratio | rounds' medians, plain / estimated |")
    print("| --- | ---: | ---: | ---: | --- |")
    for pipe in pipes:
        plain, est = medians[(pipe, False)], medians[(pipe, True)]
        p, e = statistics.median(plain), statistics.median(est)
        rounds_text = " ".join(f"{x:.1f}" for x in plain) + " / " + " ".join(f"{x:.1f}" for x in est)
        print(f"| `{pipe}` | {p:.1f} | {e:.1f} | {e / p:.2f} | {rounds_text} |")


if __name__ == "__main__":
    main()
