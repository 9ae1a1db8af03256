"""Writes the web-analytics suite's data as pyarrow writes Parquet by default (snappy,
statistics per row group, no page index) but with small row groups, as event pipelines
often do: events in daily hive folders, and a users dimension.

    python generate.py STORE_DIR [--events 1500000] [--days 92] [--users 50000]
        [--row-group 4096] [--seed 7]

STORE_DIR/events/day=YYYY-MM-DD/part-0.parquet and STORE_DIR/users/users.parquet.
Users are skewed (a few make most events, Zipf-like), a twelfth of the events are
anonymous (null user_id), referrers, countries and durations have nulls, and a session
(session_id, ~6 events) belongs to one user and one day. tests/differential.rs writes
data of the same shape in Rust at a small scale.
"""

import argparse
import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

EVENT_TYPES = np.array(["page_view", "click", "add_to_cart", "purchase", "signup"])
EVENT_WEIGHTS = np.array([0.70, 0.16, 0.09, 0.03, 0.02])
DEVICES = np.array(["desktop", "mobile", "tablet"])
COUNTRIES = np.array(["US", "DE", "FR", "GB", "IN", "BR", "JP", "CA", "ES", "NL"])
REFERRERS = np.array(
    ["google.com", "bing.com", "facebook.com", "t.co", "news.ycombinator.com", "reddit.com",
     "duckduckgo.com", "newsletter"]
)
CATEGORIES = np.array(["shoes", "bags", "hats", "coats", "socks", "shirts"])
TERMS = np.array(["Red Shoes", "bag", "winter coat", "socks", "Hat", "sale", "gift", "shirt"])
PLANS = np.array(["free", "pro", "team", "enterprise"])


def paths(rng, n):
    kind = rng.choice(6, size=n, p=[0.10, 0.45, 0.15, 0.12, 0.10, 0.08])
    product = rng.zipf(1.3, size=n) % 2000
    out = np.empty(n, dtype=object)
    out[kind == 0] = "/"
    idx = np.nonzero(kind == 1)[0]
    out[idx] = np.char.add("/products/", product[idx].astype(str))
    idx = np.nonzero(kind == 2)[0]
    out[idx] = np.char.add("/category/", CATEGORIES[rng.integers(0, len(CATEGORIES), len(idx))])
    idx = np.nonzero(kind == 3)[0]
    out[idx] = np.char.add("/search?q=", TERMS[rng.integers(0, len(TERMS), len(idx))])
    idx = np.nonzero(kind == 4)[0]
    out[idx] = np.char.add("/blog/post-", (rng.integers(0, 300, len(idx))).astype(str))
    out[kind == 5] = "/cart"
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("--events", type=int, default=1_500_000)
    ap.add_argument("--days", type=int, default=92)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--row-group", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    store = Path(args.store)
    start = dt.datetime(2025, 1, 1)

    signup = [start.date() - dt.timedelta(days=int(d)) for d in rng.integers(0, 365, args.users)]
    users = pa.table({
        "user_id": pa.array(np.arange(1, args.users + 1), pa.int64()),
        "signup_date": pa.array(signup, pa.date32()),
        "plan": pa.array(PLANS[rng.choice(4, size=args.users, p=[0.7, 0.18, 0.08, 0.04])]),
        "country": pa.array(COUNTRIES[rng.integers(0, len(COUNTRIES), args.users)]),
    })
    (store / "users").mkdir(parents=True, exist_ok=True)
    pq.write_table(users, store / "users" / "users.parquet", row_group_size=args.row_group)

    per_day = args.events // args.days
    next_event = 1
    next_session = 1
    for d in range(args.days):
        day = start + dt.timedelta(days=d)
        n = per_day + (args.events - per_day * args.days if d == args.days - 1 else 0)
        sessions = max(1, n // 6)
        # Each session: one user (skewed, a twelfth anonymous), one device, one referrer.
        s_user = (rng.zipf(1.2, size=sessions) - 1) % args.users + 1
        s_user = np.where(rng.random(sessions) < 1 / 12, 0, s_user)
        s_device = DEVICES[rng.choice(3, size=sessions, p=[0.5, 0.42, 0.08])]
        s_ref = REFERRERS[rng.integers(0, len(REFERRERS), sessions)].astype(object)
        s_ref[rng.random(sessions) < 0.4] = None
        s_country = COUNTRIES[rng.integers(0, len(COUNTRIES), sessions)].astype(object)
        s_country[rng.random(sessions) < 0.03] = None
        s_start = rng.integers(0, 86_400 - 3_600, sessions)
        sess = np.sort(rng.integers(0, sessions, n))
        offset = np.cumsum(rng.integers(1, 240, n)) % 3_600
        seconds = s_start[sess] + offset
        ts = np.datetime64(day, "us") + (seconds * 1_000_000).astype("timedelta64[us]")
        event_type = EVENT_TYPES[rng.choice(len(EVENT_TYPES), size=n, p=EVENT_WEIGHTS)]
        revenue = np.where(event_type == "purchase", rng.integers(500, 50_000, n), 0)
        duration = rng.integers(100, 120_000, n).astype(object)
        duration[rng.random(n) < 0.15] = None
        user = s_user[sess]
        table = pa.table({
            "event_id": pa.array(np.arange(next_event, next_event + n), pa.int64()),
            "ts": pa.array(ts, pa.timestamp("us")),
            "user_id": pa.array(user, pa.int64(), mask=user == 0),
            "session_id": pa.array(np.char.add("s", (sess + next_session).astype(str))),
            "event_type": pa.array(event_type),
            "path": pa.array(paths(rng, n)),
            "referrer": pa.array(s_ref[sess], pa.string()),
            "device": pa.array(s_device[sess]),
            "country": pa.array(s_country[sess], pa.string()),
            "duration_ms": pa.array(duration, pa.int32()),
            # Cents as currency units (12.34), on purchases only.
            "revenue": pa.array(
                [None if r == 0 else Decimal(r).scaleb(-2) for r in revenue.tolist()],
                pa.decimal128(10, 2),
            ),
        })
        folder = store / "events" / f"day={day.date().isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / "part-0.parquet", row_group_size=args.row_group)
        next_event += n
        next_session += sessions


if __name__ == "__main__":
    main()
