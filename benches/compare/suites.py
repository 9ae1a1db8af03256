"""The query suites benches/compare runs on Sluice and its peers, and how each peer
reads a suite's tables.

- `tpch`: fixtures/tpch's 22 pipes (tpch_sql.py) over a folder per table.
- `webanalytics`: webanalytics/pipes, 15 pipes over events in daily hive folders
  (`events/day=YYYY-MM-DD/`, `day` a string) and a users folder (webanalytics/generate.py).
- `tpcds`: tpcds/pipes, the 99 TPC-DS queries (103 pipes: q14, q23, q24 and q39 have
  two statements) over a folder per table (tpcgen-cli's one file per table, moved).

A suite's queries are plain SQL for every engine: a pipe's parameters are written in as
literals of their declared type and its nodes become a WITH clause (tpch_sql.pipe_sql).
"""

import re
import tomllib
from pathlib import Path

import tpch_sql

HERE = Path(__file__).resolve().parent
WEB_PIPES = HERE / "webanalytics" / "pipes"
TPCDS_PIPES = HERE / "tpcds" / "pipes"
TPCDS_TABLES = [
    "call_center", "catalog_page", "catalog_returns", "catalog_sales", "customer",
    "customer_address", "customer_demographics", "date_dim", "household_demographics",
    "income_band", "inventory", "item", "promotion", "reason", "ship_mode", "store",
    "store_returns", "store_sales", "time_dim", "warehouse", "web_page", "web_returns",
    "web_sales", "web_site",
]
SUITES = ["tpch", "webanalytics", "tpcds"]


def names(suite):
    if suite == "tpch":
        return tpch_sql.pipe_names()
    if suite == "webanalytics":
        return sorted(p.stem for p in WEB_PIPES.glob("w*.toml"))
    return sorted(p.stem for p in TPCDS_PIPES.glob("q*.toml"))


def sql(suite, name, sf=1.0):
    if suite == "tpch":
        return tpch_sql.pipe_sql(name, tpch_sql.params_for(name, sf))
    if suite == "webanalytics":
        return pipe_sql(WEB_PIPES / f"{name}.toml")
    return pipe_sql(TPCDS_PIPES / f"{name}.toml")


def ordered(suite, name):
    """Whether the query's rows come in a defined order (compared as they come)."""
    return "ORDER BY" in sql(suite, name).upper().rsplit(")", 1)[-1]


def pipe_sql(path, overrides=None):
    pipe = tomllib.loads(Path(path).read_text())
    params = pipe.get("params", {})
    values = {k: p.get("default") for k, p in params.items()}
    values.update(overrides or {})

    def bind(text):
        return re.sub(
            r"\$([A-Za-z_][A-Za-z0-9_]*)\b",
            lambda m: tpch_sql.literal(params[m.group(1)]["type"], values[m.group(1)]),
            text,
        )

    nodes = pipe["node"]
    body = bind(nodes[-1]["sql"]).strip()
    if len(nodes) == 1:
        return body
    ctes = ",\n".join(f"{n['name']} AS ({bind(n['sql']).strip()})" for n in nodes[:-1])
    return f"WITH {ctes}\n{body}"


def tables(suite, store):
    """{table: (glob of its Parquet files, hive-partitioned?)}: a folder per table under
    the store (Sluice reads a source from a folder; a generator's one file per table is
    moved into a folder of its name, its bytes as written)."""
    if suite == "tpch":
        return {t: (f"{store}/{t}/*.parquet", False) for t in tpch_sql.TABLES}
    if suite == "webanalytics":
        return {"events": (f"{store}/events/*/*.parquet", True),
                "users": (f"{store}/users/*.parquet", False)}
    return {t: (f"{store}/{t}/*.parquet", False) for t in TPCDS_TABLES}
