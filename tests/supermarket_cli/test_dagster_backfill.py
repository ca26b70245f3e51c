"""A real backfill of three days through a running Dagster webserver and daemon, over GraphQL.

moto server, dagster-webserver and dagster-daemon run as their own processes, as in the local
stack. The backfill is launched as the UI launches one, the daemon turns it into runs (a
subprocess each, at most two at once), and the lake is then read back from moto.
"""

import io
import json
import os
from datetime import date
from importlib.metadata import version

import boto3
import pyarrow.parquet as pq
import pytest
from pyiceberg.expressions import EqualTo

from lake_contract import layout, tables
from lambda_ingest.events import SourceObject
from lambda_ingest.handler import ingest
from supermarket_cli.dagster_graphql import DagsterGraphQL, DagsterGraphQLError
from supermarket_cli.dagster_instance import (
    MIGRATED_STAMP,
    running_dagster,
    write_instance_config,
)
from supermarket_cli.processes import port_is_free
from tests.factories import ndjson, record
from tests.moto_server import free_port, moto_server_process, table_rows, use_test_aws

BUCKET = "backfill-lake"
DAYS = ["2025-03-01", "2025-03-02", "2025-03-03"]
OUTSIDE = "2025-03-04"  # the day after the range: it must come through untouched
HISTORY_ASSETS = ["raw_history_logs", "transactions", "transaction_items"]
PER_DAY = 60
CATALOGUE = {"stores": 3, "skus": 200, "seed": 7}
BACKFILL_CONFIG = {
    "ops": {"raw_history_logs": {"config": {"transactions_per_day": PER_DAY, **CATALOGUE}}}
}
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _keys(s3, prefix):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _raw_day(s3, day):
    """The transaction ids and item count in one day's raw logs."""
    ids, items = [], 0
    for key in _keys(s3, layout.day_prefix(layout.RAW_HISTORY, date.fromisoformat(day))):
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        for line in body.splitlines():
            if line.strip():
                record = json.loads(line)
                ids.append(record["transaction_id"])
                items += len(record["items"])
    return ids, items


def _lake_day(table, day):
    return table_rows(table, row_filter=EqualTo("dt", day)).to_pylist()


@pytest.mark.slow
def test_a_three_day_backfill_through_the_running_webserver_and_daemon(tmp_path, monkeypatch):
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    with moto_server_process() as endpoint:
        use_test_aws(monkeypatch, endpoint)  # fresh clients and catalog for this endpoint
        monkeypatch.setenv(tables.COMMIT_LOCK_VARIABLE, str(tmp_path / "commit.lock"))
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        tables.create_tables(tables.glue_catalog(), f"s3://{BUCKET}")
        # A day outside the range already holds data: a backfill must not rewrite or remove it.
        outside = date.fromisoformat(OUTSIDE)
        sentinel = f"raw/incoming/dt={OUTSIDE}/till-1.ndjson"
        s3.put_object(
            Bucket=BUCKET,
            Key=sentinel,
            Body=ndjson(record("S-1", transaction_datetime=f"{OUTSIDE}T10:00:00Z")),
        )
        ingest(SourceObject(BUCKET, sentinel, None, None), BUCKET)
        before = _lake_day("transactions", OUTSIDE)

        home = tmp_path / "dagster_home"
        write_instance_config(home, max_concurrent_runs=2)
        port = free_port()
        env = {**os.environ, **FAKE_AWS, "AWS_ENDPOINT_URL": endpoint, "LAKE_BUCKET": BUCKET}
        # Two runs commit at once, and moto's Glue cannot refuse a stale commit: take turns.
        env[tables.COMMIT_LOCK_VARIABLE] = str(tmp_path / "commit.lock")
        with running_dagster(home, port, env, log_dir=tmp_path) as servers:
            dagster = DagsterGraphQL(servers.url)
            dagster.wait_ready(timeout=120)
            # The code server created the fresh storage alone, stamped with this version.
            stamp = home / "storage" / MIGRATED_STAMP
            assert stamp.read_text() == version("dagster")
            assert {*HISTORY_ASSETS, "supermarkets", "skus"} <= set(dagster.asset_keys())

            reference_run = dagster.launch_assets(
                ["supermarkets", "skus"],
                run_config={
                    "ops": {name: {"config": CATALOGUE} for name in ("supermarkets", "skus")}
                },
            )
            failing_run = dagster.launch_assets(
                ["supermarkets"],
                run_config={"ops": {"supermarkets": {"config": {"stores": 0}}}},
            )
            backfill = dagster.launch_backfill(HISTORY_ASSETS, DAYS, run_config=BACKFILL_CONFIG)
            assert dagster.wait_run(reference_run, timeout=120) == "SUCCESS"
            # A run that fails raises with the asset's own error, on one line.
            with pytest.raises(DagsterGraphQLError) as failure:
                dagster.wait_run(failing_run, timeout=120)
            assert "failure" in str(failure.value)
            assert "ValueError: need at least one store, got 0" in str(failure.value)
            assert "\n" not in str(failure.value)
            # What Dagster refuses at launch is a clear error, too.
            with pytest.raises(DagsterGraphQLError, match="unknown asset keys: no_such_table"):
                dagster.launch_assets(["no_such_table"])
            with pytest.raises(DagsterGraphQLError, match=r"bad config: .*stores"):
                dagster.launch_assets(
                    ["supermarkets"],
                    run_config={"ops": {"supermarkets": {"config": {"stores": "five"}}}},
                )
            lines = []
            result = dagster.wait_backfill(
                backfill, timeout=150, progress=lambda p: lines.append(p.line())
            )
            materializations = [
                m for run in result["runs"] for m in dagster.run_materializations(run["run_id"])
            ]
        assert port_is_free("127.0.0.1", port), (
            "the webserver's port is still taken after stopping it"
        )
        assert all(
            server.poll() is not None
            for server in (servers.webserver, servers.daemon, servers.code_server)
        )

        # Then every partition succeeded, in runs that covered exactly the requested days.
        assert result["partitions"] == dict.fromkeys(DAYS, "succeeded")
        assert (result["done"], result["failed"]) == (3, 0)
        assert sorted(p for run in result["runs"] for p in run["partitions"]) == DAYS
        assert lines[-1].startswith(f"backfill {backfill}: 3/3 partitions materialized")

        # The reference tables hold the configured catalogue.
        for table, rows in (("supermarkets", 3), ("skus", 200)):
            key = layout.reference_key(table)
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            assert pq.read_table(io.BytesIO(body)).num_rows == rows

        # The lake holds exactly the raw logs' rows for each day, and Dagster recorded them.
        recorded = {(m["asset_key"], m["partition"]): m["metadata"] for m in materializations}
        for day in DAYS:
            raw_ids, raw_items = _raw_day(s3, day)
            assert len(raw_ids) == PER_DAY
            transactions = _lake_day("transactions", day)
            items = _lake_day("transaction_items", day)
            assert sorted(r["transaction_id"] for r in transactions) == sorted(raw_ids)
            assert len(items) == raw_items
            assert {r["transaction_id"] for r in items} == set(raw_ids)
            assert recorded[("transactions", day)]["rows"] == PER_DAY
            assert recorded[("transaction_items", day)]["rows"] == raw_items
            assert recorded[("raw_history_logs", day)]["transactions"] == PER_DAY

        # The day outside the range: no raw logs, and the live rows there are unchanged.
        assert _keys(s3, layout.day_prefix(layout.RAW_HISTORY, outside)) == []
        assert _lake_day("transactions", OUTSIDE) == before and len(before) == 1
        assert ("transactions", OUTSIDE) not in recorded


def test_a_webserver_that_is_not_there_is_a_clear_one_line_error():
    port = free_port()
    with pytest.raises(DagsterGraphQLError, match=r"not ready after 1 s: .*unreachable"):
        DagsterGraphQL(f"http://127.0.0.1:{port}").wait_ready(timeout=1)
