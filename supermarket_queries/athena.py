"""The same views and SQL against Athena in AWS: start, wait, page through the results."""

import os
import time
from typing import Any

import boto3
import pyarrow as pa

from supermarket_queries import views
from supermarket_queries.engine import QueryError
from supermarket_queries.glue import DEFAULT_DATABASE

DEFAULT_WORKGROUP = "supermarket-lake"


def create_view_statements() -> list[str]:
    """What deployment runs once so that Athena has every curated view."""
    return [f"CREATE OR REPLACE VIEW {n} AS\n{views.athena_sql(n)}" for n in views.view_names()]


class AthenaEngine:
    def __init__(
        self,
        database: str = DEFAULT_DATABASE,
        workgroup: str | None = None,
        poll_seconds: float = 0.25,
    ) -> None:
        self.database = database
        self.workgroup = workgroup or os.environ.get("ATHENA_WORKGROUP", DEFAULT_WORKGROUP)
        self.poll_seconds = poll_seconds
        self._athena = boto3.client("athena")

    def query(self, sql: str) -> pa.Table:
        started = self._athena.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": self.database},
            WorkGroup=self.workgroup,
        )
        execution_id = started["QueryExecutionId"]
        while True:
            status = self._athena.get_query_execution(QueryExecutionId=execution_id)
            state = status["QueryExecution"]["Status"]
            if state["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
            time.sleep(self.poll_seconds)
        if state["State"] != "SUCCEEDED":
            raise QueryError(state.get("StateChangeReason", state["State"]))
        return self._results(execution_id)

    def _results(self, execution_id: str) -> pa.Table:
        names: list[str] = []
        rows: list[list[Any]] = []
        pages = self._athena.get_paginator("get_query_results").paginate(
            QueryExecutionId=execution_id
        )
        for page in pages:
            result = page["ResultSet"]
            if not names:
                names = [c["Name"] for c in result["ResultSetMetadata"]["ColumnInfo"]]
            values = [[d.get("VarCharValue") for d in r["Data"]] for r in result["Rows"]]
            rows += values[1:] if not rows and values and values[0] == names else values
        # Athena returns text; callers that need types cast, as QuickSight does.
        return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})

    def view(self, name: str, where: str | None = None) -> pa.Table:
        views.athena_sql(name)  # raises UnknownView with the list of views
        return self.query(f"SELECT * FROM {name}" + (f" WHERE {where}" if where else ""))
