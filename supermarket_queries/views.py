"""The curated views: one Athena SQL file each under sql/, the only copy of their text.

Locally the same text runs on DuckDB, transpiled by sqlglot (athena -> duckdb) when loaded.
A view may read another view by name (the daily, hourly and payment views sum
store_hourly_sales): the view it reads is then put in as a CTE of that name, so every view's
SQL stands alone, wherever it runs (QuickSight's custom SQL, a fresh Athena database, DuckDB)
and in whatever order the views are created.
"""

import re
from functools import cache
from importlib import resources

import sqlglot
from sqlglot import exp

SQL_FOLDER = "sql"


@cache
def view_names() -> tuple[str, ...]:
    folder = resources.files("supermarket_queries") / SQL_FOLDER
    return tuple(
        sorted(f.name.removesuffix(".sql") for f in folder.iterdir() if f.name.endswith(".sql"))
    )


class UnknownView(KeyError):
    def __str__(self) -> str:
        return f"no view named {self.args[0]!r}; the views are: {', '.join(view_names())}"


def _written(name: str) -> str:
    if name not in view_names():
        raise UnknownView(name)
    return (resources.files("supermarket_queries") / SQL_FOLDER / f"{name}.sql").read_text()


@cache
def reads(name: str) -> tuple[str, ...]:
    """The views this view's file reads by name, each after the views it reads in turn."""
    tree = sqlglot.parse_one(_written(name), read="athena")
    direct = sorted({t.name for t in tree.find_all(exp.Table) if not t.db} & set(view_names()))
    order: list[str] = []
    for view in direct:
        order += [v for v in (*reads(view), view) if v not in order]
    return tuple(order)


_LEADING_COMMENTS = re.compile(r"\A(\s*--[^\n]*\n)*\s*")


@cache
def athena_sql(name: str) -> str:
    """The view's SELECT in Athena's dialect: its file, with the views it reads as CTEs."""
    text = _written(name)
    if not reads(name):
        return text
    header = _LEADING_COMMENTS.match(text).group(0) if _LEADING_COMMENTS.match(text) else ""
    body = text[len(header) :]
    ctes = ",\n".join(f"{view} AS (\n{_written(view).strip()}\n)" for view in reads(name))
    if re.match(r"WITH\b", body, re.IGNORECASE):
        return f"{header}WITH {ctes},\n{body[4:].lstrip()}"
    return f"{header}WITH {ctes}\n{body}"


@cache
def duckdb_sql(name: str) -> str:
    """The same SELECT in DuckDB's dialect."""
    (statement,) = sqlglot.transpile(athena_sql(name), read="athena", write="duckdb")
    return statement
