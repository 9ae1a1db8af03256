"""The TPC-H pipes of fixtures/tpch as plain SQL for other engines.

Each pipe's parameters are written into its SQL as literals of their declared type
(Sluice binds them as typed values instead), and its nodes become a WITH clause, so
every engine runs the same query text Sluice plans.
"""

import re
import tomllib
from pathlib import Path

PIPES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "tpch" / "pipes"
TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]


def q11_fraction(sf: float) -> float:
    """Q11's FRACTION is 0.0001 / SF."""
    return 0.0001 / sf


def literal(ty: str, value) -> str:
    if ty == "date":
        return f"DATE '{value}'"
    if ty == "timestamp":
        return f"TIMESTAMP '{value}'"
    if ty == "string":
        return "'" + str(value).replace("'", "''") + "'"
    if ty == "bool":
        return "TRUE" if value else "FALSE"
    return repr(value)


def pipe_names():
    return sorted(p.stem for p in PIPES_DIR.glob("q*.toml"))


def params_for(name: str, sf: float) -> dict:
    """The parameter values a run at `sf` uses: the defaults, and Q11's fraction."""
    return {"fraction": q11_fraction(sf)} if name == "q11" else {}


def pipe_sql(name: str, overrides: dict | None = None) -> str:
    pipe = tomllib.loads((PIPES_DIR / f"{name}.toml").read_text())
    params = pipe.get("params", {})
    values = {k: p.get("default") for k, p in params.items()}
    values.update(overrides or {})

    def bind(sql: str) -> str:
        def sub(m):
            k = m.group(1)
            return literal(params[k]["type"], values[k])

        # Longest names first is implied by \b: $size1 never matches $size.
        bound = re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)\b", sub, sql)
        # Fold 'a' || 'b' into 'ab': Polars wants LIKE patterns as one literal.
        concat = re.compile(r"'((?:[^']|'')*)'\s*\|\|\s*'((?:[^']|'')*)'")
        while concat.search(bound):
            bound = concat.sub(lambda m: f"'{m.group(1)}{m.group(2)}'", bound)
        return bound

    nodes = pipe["node"]
    body = bind(nodes[-1]["sql"]).strip()
    if len(nodes) == 1:
        return body
    ctes = ",\n".join(f"{n['name']} AS ({bind(n['sql']).strip()})" for n in nodes[:-1])
    return f"WITH {ctes}\n{body}"


def order_sensitive(name: str) -> bool:
    pipe = tomllib.loads((PIPES_DIR / f"{name}.toml").read_text())
    return "ORDER BY" in pipe["node"][-1]["sql"].upper()
