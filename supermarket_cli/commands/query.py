"""`supermarket query`: SQL or a curated view against the lake, on DuckDB or Athena."""

import sys
from pathlib import Path

import click

from supermarket_cli.commands.options import POSITIVE

DEFAULT_LIMIT = 50


@click.command(short_help="run SQL or a curated view against the lake")
@click.argument("sql", required=False)
@click.option("--view", help="a curated view by name")
@click.option("--where", help="filter for --view, e.g. \"dt = DATE '2026-03-01'\"")
@click.option("--lake", default=None, help="s3://bucket or a folder (default: the running stack's)")
@click.option("--engine", type=click.Choice(["local", "athena"]), default="local")
@click.option("--csv", type=click.Path(path_type=Path), help="write the result as CSV")
@click.option("--parquet", type=click.Path(path_type=Path), help="write the result as Parquet")
@click.option(
    "--limit", type=POSITIVE, default=DEFAULT_LIMIT, help=f"rows to print (default {DEFAULT_LIMIT})"
)
def query(
    sql: str | None,
    view: str | None,
    where: str | None,
    lake: str | None,
    engine: str,
    csv: Path | None,
    parquet: Path | None,
    limit: int,
) -> None:
    """Run SQL (or a curated view, with --view) against the lake: DuckDB over the lake's
    Parquet locally, or Athena with --engine athena."""
    from supermarket_queries.engine import QueryError
    from supermarket_queries.table_text import table_text
    from supermarket_queries.views import UnknownView

    if bool(sql) == bool(view):
        raise ValueError("give either a SQL query or --view NAME")
    if engine == "athena":
        from supermarket_queries.athena import AthenaEngine

        runner = AthenaEngine()
    else:
        from supermarket_cli.stack.discovery import choose_lake
        from supermarket_queries.engine import LocalEngine

        choice = choose_lake(lake)
        print(f"supermarket query: {choice.explanation}", file=sys.stderr)
        runner = LocalEngine(choice.lake, choice.endpoint)
    try:
        result = runner.view(view, where) if view else runner.query(sql)
    except (QueryError, UnknownView) as exc:
        raise ValueError(str(exc)) from None
    if csv:
        import pyarrow.csv

        pyarrow.csv.write_csv(result, csv)
    if parquet:
        import pyarrow.parquet

        pyarrow.parquet.write_table(result, parquet)
    if not (csv or parquet):
        print(table_text(result, limit))
    else:
        print(f"wrote {result.num_rows:,} rows")
