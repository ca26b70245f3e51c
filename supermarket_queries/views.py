"""The curated views: one Athena SQL file each under sql/, the only copy of their text.

Locally the same text runs on DuckDB, transpiled by sqlglot (athena -> duckdb) when loaded.
"""

from functools import cache
from importlib import resources

import sqlglot

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


def athena_sql(name: str) -> str:
    """The view's SELECT as written, in Athena's dialect."""
    if name not in view_names():
        raise UnknownView(name)
    return (resources.files("supermarket_queries") / SQL_FOLDER / f"{name}.sql").read_text()


@cache
def duckdb_sql(name: str) -> str:
    """The same SELECT in DuckDB's dialect."""
    (statement,) = sqlglot.transpile(athena_sql(name), read="athena", write="duckdb")
    return statement
