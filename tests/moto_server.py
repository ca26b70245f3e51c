"""moto for tests: the test AWS environment, and a real moto server on a free loopback port."""

import logging
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from moto.server import ThreadedMotoServer

from lake_contract import s3, tables
from lake_contract.s3 import LakeBucket
from lambda_ingest import handler
from supermarket_cli.processes import free_port
from supermarket_cli.stack.children import moto_server as moto_server_process

__all__ = [
    "free_port",
    "iceberg_lake",
    "moto_server_process",
    "running_moto",
    "table_rows",
    "use_test_aws",
]


def use_test_aws(monkeypatch, endpoint: str | None = None) -> None:
    """Fake credentials, one region, the given endpoint (None: in-process mock_aws), no
    LAKE_BUCKET override, and a fresh S3 client for the handler."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    else:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("LAKE_BUCKET", raising=False)
    monkeypatch.delenv(tables.COMMIT_LOCK_VARIABLE, raising=False)
    monkeypatch.delenv(tables.DATABASE_VARIABLE, raising=False)
    s3.aws_client.cache_clear()
    handler.lake_tables.cache_clear()  # its catalog knows the endpoint it was made for


@contextmanager
def running_moto(monkeypatch) -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # In-process servers share moto's global state: start every test from nothing.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    use_test_aws(monkeypatch, endpoint)
    try:
        yield endpoint
    finally:
        s3.aws_client.cache_clear()
        server.stop()


@contextmanager
def iceberg_lake(monkeypatch, bucket: str) -> Iterator[str]:
    """A moto server holding the lake bucket and its Iceberg tables in the Glue catalog, with
    the test AWS environment pointed at it. pyarrow's S3 client (Iceberg's file IO) is not
    boto3, so in-process mock_aws cannot serve it: a server can. Yields the endpoint."""
    with running_moto(monkeypatch) as endpoint, tempfile.TemporaryDirectory() as lock_folder:
        # moto's Glue cannot refuse a stale commit: committers take turns, as in the stack.
        monkeypatch.setenv(tables.COMMIT_LOCK_VARIABLE, f"{lock_folder}/commit.lock")
        LakeBucket(bucket).create()
        tables.create_tables(tables.glue_catalog(), f"s3://{bucket}")
        yield endpoint


def table_rows(table: str, **scan: Any) -> pa.Table:
    """Every row of an Iceberg table of the lake (or the rows scan(**scan) selects)."""
    catalog = tables.glue_catalog()
    return catalog.load_table((tables.database_from_environment(), table)).scan(**scan).to_arrow()


def catalog_entries() -> dict[str, dict[str, Any]]:
    """Each Iceberg table's Glue entry as it is now, to put back with restore_catalog_entries."""
    glue = s3.aws_client("glue")
    database = tables.database_from_environment()
    return {
        name: glue.get_table(DatabaseName=database, Name=name)["Table"]
        for name in tables.ICEBERG_TABLES
    }


def restore_catalog_entries(entries: dict[str, dict[str, Any]]) -> None:
    """Points each table back at the metadata file it had (its files restored beside)."""
    glue = s3.aws_client("glue")
    for table in entries.values():
        table_input = {
            k: table[k] for k in ("Name", "TableType", "Parameters", "StorageDescriptor")
        }
        glue.update_table(DatabaseName=table["DatabaseName"], TableInput=table_input)
    handler.lake_tables.cache_clear()
