"""engine.data_version() on moto: it changes when the Lambda lands a file (rows, quarantine,
a late audit record) or reference data changes, and only then."""

import json

import boto3

from lake_contract import layout
from lake_contract.parquet import parquet_bytes
from lambda_ingest.handler import lambda_handler
from simulator.reference import generate_supermarkets
from supermarket_queries.engine import LocalEngine
from tests.factories import ndjson, record
from tests.moto_server import running_moto

BUCKET = "watermark-lake"


def _lambda(key: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    lambda_handler({"Records": [{"eventSource": "aws:s3", "s3": {
        "bucket": {"name": BUCKET}, "object": {"key": key}}}]}, None)  # fmt: skip


def test_the_version_moves_with_every_change_and_stays_put_otherwise(monkeypatch):
    with running_moto(monkeypatch):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        engine = LocalEngine(f"s3://{BUCKET}")
        seen = [engine.data_version()]
        assert engine.data_version() == seen[-1]

        _lambda("raw/incoming/dt=2026-03-01/a.ndjson", ndjson(record("a")))
        seen.append(engine.data_version())
        assert engine.data_version() == seen[-1]

        _lambda("raw/incoming/dt=2026-03-01/b.ndjson", ndjson(record("b"), "not json"))
        seen.append(engine.data_version())

        # A record that lands after a newer one (two Lambdas finishing together) still counts.
        newest = max(
            o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="audit/")["Contents"]
        )
        late_ms = layout.audit_time_ms(newest) - 2_000
        late = f"{newest.rsplit('/', 1)[0]}/{late_ms:013d}-late-0000000000000000.json"
        s3.put_object(Bucket=BUCKET, Key=late, Body=json.dumps({"source_key": "x"}).encode())
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
