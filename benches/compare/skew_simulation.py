"""How often a 95% interval for a mean covers the truth: Student's t against Hall's
skewness-corrected interval (what Sluice's `avg` estimates use), by simulation.

    python benches/compare/skew_simulation.py [REPS]

Draws REPS samples (default 20,000) of n values from a lognormal like the generated
events' amount (sigma = 1.18), from a share near 0.9 and from a normal, and prints the
share of samples whose interval holds the true mean, both ways. Hall (1992): with the
mean's estimated skewness a = mu3 / (n^2 se^3), the bounds are m - se * g^-1(+-t), where
g^-1(x) = (3/a) * (cbrt(1 + a (x - a/6)) - 1). Needs numpy.
"""

import sys

import numpy as np

# Student's t, 0.975, by degrees of freedom.
T975 = {7: 2.365, 9: 2.262, 15: 2.131, 28: 2.048, 31: 2.040, 99: 1.984}


def coverage(rng, n, draw, mu, reps, hall):
    inside = 0
    t = T975[n - 1]
    for _ in range(reps):
        x = draw(rng, n)
        m = x.mean()
        se = np.sqrt(x.var(ddof=1) / n)
        if hall and se > 0:
            a = ((x - m) ** 3).sum() / n**3 / se**3

            def inverse(v):
                if abs(a) < 1e-12:
                    return v
                return 3 * (np.cbrt(1 + a * (v - a / 6)) - 1) / a

            lo, hi = m - se * inverse(t), m - se * inverse(-t)
        else:
            lo, hi = m - t * se, m + t * se
        inside += lo <= mu <= hi
    return inside / reps


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rng = np.random.default_rng(1)
    sigma = 1.2 * 1.7 * np.sqrt(4 / 12)
    cases = [
        ("lognormal", lambda r, n: np.exp(r.normal(3, sigma, n)), np.exp(3 + sigma**2 / 2)),
        ("share 0.9", lambda r, n: (r.random(n) < 0.9).astype(float), 0.9),
        ("normal", lambda r, n: r.normal(0, 1, n), 0.0),
    ]
    print("| values | n | t interval | Hall's |")
    print("| --- | ---: | ---: | ---: |")
    for name, draw, mu in cases:
        for n in (8, 16, 32, 100):
            t = coverage(rng, n, draw, mu, reps, hall=False)
            h = coverage(rng, n, draw, mu, reps, hall=True)
            print(f"| {name} | {n} | {t:.1%} | {h:.1%} |")


if __name__ == "__main__":
    main()
