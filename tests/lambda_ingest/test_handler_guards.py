"""What the Lambda may read and write: only the lake's own prefixes are written, keys that are
not plain paths are never read, a source over the size bound is never read whole."""

import gzip
import json

import boto3
import pytest
from botocore.response import StreamingBody

from lake_contract import layout
from lake_contract import s3 as lake_s3
from lambda_ingest import settings
from lambda_ingest.handler import lambda_handler
from tests.factories import ndjson, record
from tests.lambda_ingest.test_handler import audits, direct_event, keys, lake_rows
from tests.moto_server import iceberg_lake

BUCKET = "supermarket-lake-test"


@pytest.fixture
def s3(monkeypatch):
    with iceberg_lake(monkeypatch, BUCKET):
        yield boto3.client("s3")


def every_key(s3):
    return set(keys(s3, ""))


@pytest.mark.parametrize(
    "key",
    [
        "raw/incoming/x.ndjson",
        "lake/../raw/x",
        "lake//x",
        "/lake/x",
        "lake/./x",
        "lake/",
        "other/x",
    ],
)
def test_a_bucket_given_the_lake_prefixes_refuses_any_other_write_or_delete(s3, key):
    lake = lake_s3.LakeBucket(BUCKET, writable=layout.OUTPUT_PREFIXES)
    before = every_key(s3)

    for attempt in (
        lambda: lake.write(key, b"x"),
        lambda: lake.write_many({key: b"x"}),
        lambda: lake.delete(key),
        lambda: lake.delete_many(["lake/fine.parquet", key]),
    ):
        with pytest.raises(lake_s3.WriteRefused, match="refusing to write"):
            attempt()
    assert every_key(s3) == before
    lake.write("lake/transactions/dt=2026-03-01/a.parquet", b"x")  # its own prefixes: allowed
    assert every_key(s3) - before == {"lake/transactions/dt=2026-03-01/a.parquet"}


@pytest.mark.parametrize(
    "key",
    [
        "raw/incoming/../../lake/transactions/dt=2026-03-01/x.parquet",
        "raw/incoming/./a.ndjson",
        "raw/incoming//a.ndjson",
        "raw/incoming/dt=2026-03-01/",
    ],
)
def test_a_source_key_that_is_not_a_plain_path_is_quarantined_unread(s3, monkeypatch, key):
    # given: the object, and what a path-normalising layer would turn its key into
    s3.put_object(Bucket=BUCKET, Key=key, Body=ndjson(record("a")))
    s3.put_object(Bucket=BUCKET, Key="lake/transactions/dt=2026-03-01/x.parquet", Body=b"own")
    reads = []
    monkeypatch.setattr(lake_s3.LakeBucket, "read", lambda self, *a, **k: reads.append(a))
    before = every_key(s3)

    # when
    assert lambda_handler(direct_event(key), None) == {"batchItemFailures": []}

    # then: nothing read; one quarantine record saying why, one audit record
    assert reads == []
    new = every_key(s3) - before
    assert {k.split("/")[0] for k in new} == {"quarantine", "audit"}
    (quarantine_key,) = [k for k in new if k.startswith(layout.QUARANTINE)]
    (line,) = s3.get_object(Bucket=BUCKET, Key=quarantine_key)["Body"].read().splitlines()
    assert "so it is not read" in json.loads(line)["reason"]
    (audit,) = audits(s3)
    assert (audit["records_read"], audit["records_quarantined"], audit["file_rejected"]) == (
        0,
        1,
        True,
    )


@pytest.mark.parametrize(
    "key",
    [
        "raw/incoming/dt=2026-03-01/till 7 café+crème%2F..%2F.ndjson",
        "raw/incoming/dt=2026-03-01/\x01ctl\x7f\tab.ndjson",
        "raw/incoming/lake/transactions/dt=2026-03-01/fake.parquet",
        "raw/incoming/dt=2026-03-01/" + "é" * 300 + ".ndjson",
        "raw/incoming/dt=2026-03-01/..a../b..",
    ],
)
def test_odd_characters_in_a_source_key_land_its_rows_and_write_only_the_lake_prefixes(s3, key):
    s3.put_object(Bucket=BUCKET, Key=key, Body=ndjson(record("a"), record("b")))
    before = every_key(s3)

    assert lambda_handler(direct_event(key), None) == {"batchItemFailures": []}

    new = every_key(s3) - before
    assert new and all(k.startswith(layout.OUTPUT_PREFIXES) for k in new)
    assert all(layout.key_problem(k) is None for k in new)
    assert {r["source_key"] for r in lake_rows(s3, "transactions")} == {key}


@pytest.mark.parametrize(
    "key", ["lake/transactions/dt=2026-03-01/x.ndjson", "quarantine/x.ndjson", "audit/x.json", "x"]
)
def test_keys_outside_raw_are_never_read_nor_answered_with_writes(s3, monkeypatch, key):
    s3.put_object(Bucket=BUCKET, Key=key, Body=ndjson(record("a")))
    reads = []
    monkeypatch.setattr(lake_s3.LakeBucket, "read", lambda self, *a, **k: reads.append(a))

    before = every_key(s3)

    assert lambda_handler(direct_event(key), None) == {"batchItemFailures": []}

    assert reads == [] and every_key(s3) == before


BOUND = 20_000


def sized_log(size: int) -> bytes:
    head = ndjson(*[record(f"T-{n}") for n in range(5)])
    padding = size - len(head) - len(ndjson(record("T-last", pad="")))
    return head + ndjson(record("T-last", pad="p" * padding))


def test_a_source_just_over_the_bound_is_quarantined_without_reading_its_body(s3, monkeypatch):
    # given: the bound set to 20,000 bytes, one log of exactly that and one a byte over
    monkeypatch.setenv(settings.MAX_SOURCE_BYTES_VARIABLE, str(BOUND))
    at_bound, over = sized_log(BOUND), sized_log(BOUND + 1)
    assert (len(at_bound), len(over)) == (BOUND, BOUND + 1)
    s3.put_object(Bucket=BUCKET, Key="raw/incoming/at.ndjson", Body=at_bound)
    s3.put_object(Bucket=BUCKET, Key="raw/incoming/over.ndjson", Body=over)
    read_sizes = []
    real_read = StreamingBody.read
    monkeypatch.setattr(
        StreamingBody,
        "read",
        lambda self, amt=None: read_sizes.append(len(chunk := real_read(self, amt))) or chunk,
    )

    # when
    lambda_handler(direct_event("raw/incoming/at.ndjson", "raw/incoming/over.ndjson"), None)

    # then: the one at the bound lands; the one over it is refused unread, and says why
    assert max(read_sizes) == BOUND
    by_source = {a["source_key"]: a for a in audits(s3)}
    assert by_source["raw/incoming/at.ndjson"]["rows_written"]["transactions"] == 6
    refused = by_source["raw/incoming/over.ndjson"]
    assert (refused["size_bytes"], refused["records_quarantined"], refused["file_rejected"]) == (
        BOUND + 1,
        1,
        True,
    )
    (line,) = (
        s3.get_object(Bucket=BUCKET, Key=layout.quarantine_key("raw/incoming/over.ndjson"))["Body"]
        .read()
        .splitlines()
    )
    assert json.loads(line)["reason"] == (
        f"file is {BOUND + 1:,} bytes, over the {BOUND:,}-byte bound on a source file"
    )


def test_a_small_gzip_that_inflates_past_the_bound_is_quarantined(s3, monkeypatch):
    monkeypatch.setenv(settings.MAX_SOURCE_BYTES_VARIABLE, str(BOUND))
    s3.put_object(
        Bucket=BUCKET, Key="raw/incoming/bomb.ndjson.gz", Body=gzip.compress(b" " * 10**7)
    )

    lambda_handler(direct_event("raw/incoming/bomb.ndjson.gz"), None)

    (audit,) = audits(s3)
    assert audit["file_rejected"] and audit["records_quarantined"] == 1


@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_a_bad_bound_is_a_configuration_error(value):
    with pytest.raises(ValueError, match="MAX_SOURCE_BYTES"):
        settings.max_source_bytes({settings.MAX_SOURCE_BYTES_VARIABLE: value})


def test_the_bound_defaults_when_unset():
    assert settings.max_source_bytes({}) == settings.DEFAULT_MAX_SOURCE_BYTES == 256 * 2**20
