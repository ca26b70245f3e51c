"""engine.data_version() on moto: it changes when the Lambda commits a file's rows, when
quarantine or reference data changes, when maintenance commits, and only then."""

from datetime import UTC, date, datetime

import boto3

from lake_contract import layout, tables
from lake_contract.parquet import parquet_bytes
from lake_contract.s3 import LakeBucket
from lake_contract.tables import LakeTables
from lambda_ingest.handler import lambda_handler
from simulator.reference import generate_supermarkets
from supermarket_queries.engine import LocalEngine
from supermarket_queries.rollup import roll_up_iceberg_day
from tests.factories import ndjson, record
from tests.moto_server import iceberg_lake

BUCKET = "watermark-lake"


def _lambda(key: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    lambda_handler({"Records": [{"eventSource": "aws:s3", "s3": {
        "bucket": {"name": BUCKET}, "object": {"key": key}}}]}, None)  # fmt: skip


def test_the_version_moves_with_every_change_and_stays_put_otherwise(monkeypatch):
    with iceberg_lake(monkeypatch, BUCKET):
        s3 = boto3.client("s3")
        engine = LocalEngine(f"s3://{BUCKET}")
        seen = [engine.data_version()]
        assert engine.data_version() == seen[-1]

        _lambda("raw/incoming/dt=2026-03-01/a.ndjson", ndjson(record("a")))
        seen.append(engine.data_version())
        assert engine.data_version() == seen[-1]

        _lambda("raw/incoming/dt=2026-03-01/b.ndjson", ndjson(record("b"), "not json"))
        seen.append(engine.data_version())

        # A commit that is not the Lambda's (the rollup) moves it too.
        roll_up_iceberg_day(LakeTables(tables.glue_catalog(), tables.DEFAULT_DATABASE),
                            date(2026, 3, 1), datetime.now(UTC))  # fmt: skip
        seen.append(engine.data_version())

        stores = parquet_bytes(generate_supermarkets(3, seed=1))
        s3.put_object(Bucket=BUCKET, Key=layout.reference_key("supermarkets"), Body=stores)
        seen.append(engine.data_version())

        s3.delete_object(
            Bucket=BUCKET, Key=layout.quarantine_key("raw/incoming/dt=2026-03-01/b.ndjson")
        )
        seen.append(engine.data_version())

        assert len(set(seen)) == len(seen)
        assert LocalEngine(f"s3://{BUCKET}").data_version() == seen[-1]  # a fresh engine agrees


def test_only_quarantine_is_listed(monkeypatch):
    # moto lists by scanning every key of the bucket: the version is taken every few seconds.
    with iceberg_lake(monkeypatch, BUCKET):
        listed, listing = [], LakeBucket.listing
        monkeypatch.setattr(
            LakeBucket, "listing", lambda self, prefix, *a, **k: listed.append(prefix)
            or listing(self, prefix, *a, **k)
        )  # fmt: skip
        LocalEngine(f"s3://{BUCKET}").data_version()

        assert listed == [layout.QUARANTINE]
