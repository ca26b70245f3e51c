"""Fuzzing the transform and the handler: arbitrary bytes, arbitrary JSON, near-valid records
and arbitrary keys never raise, and every record read is a row or a reject with a rule's reason
(for the handler, as its audit record says). FUZZ_EXAMPLES=5000 runs a longer campaign."""

import gzip
import json
import os
import re
import uuid
from urllib.parse import quote_plus

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyiceberg.expressions import EqualTo

from lake_contract import layout
from lambda_ingest.handler import lambda_handler
from lambda_ingest.transform import UNREADABLE, transform
from tests.moto_server import iceberg_lake, table_rows

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Every reason the transform gives starts with, or holds, one of its rules' words.
RULES = re.compile(
    r"^not valid JSON|^not a JSON object|^transaction_id .* repeats line \d+|"
    r" is missing| is empty| must be | must not be |is not an ISO-8601| has more than |"
    r"is not an object|^gzip stream is corrupt|^file is not UTF-8|^file inflates|^file is \d"
)

characters = st.characters(exclude_categories=())  # lone surrogates too: JSON escapes them
text = st.text(characters, max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,  # NaN, Infinity, 10**40 too
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=10,
)
ids = st.sampled_from(["T-1", "T-2", "T-3", ""]) | text  # a small pool: ids repeat
stamps = st.sampled_from(
    ["2026-03-01T10:00:00Z", "2026-03-01T23:59:59.999+01:00", "2026-03-01T10:00:00", "nope"]
)
prices = st.sampled_from([0, 1, 3.49, "3.49", -1, 0.001, 99999999.99, 1e9, "x"])
items = st.fixed_dictionaries(
    {},
    optional={
        "sku_id": ids | json_values,
        "quantity": st.integers(-2, 10_002) | json_values,
        "unit_price": prices | json_values,
        "note": json_values,
    },
)
records = st.fixed_dictionaries(
    {},
    optional={
        "transaction_id": ids | json_values,
        "store_id": ids | json_values,
        "transaction_datetime": stamps | json_values,
        "payment_method": ids | json_values,
        "items": st.lists(items | json_values, max_size=4) | json_values,
        "unknown": json_values,
    },
)
lines = st.one_of(
    records.map(json.dumps),
    json_values.map(json.dumps),
    st.tuples(records, records).map(lambda pair: "".join(map(json.dumps, pair))),  # two a line
    st.text(max_size=40),  # raw text, as UTF-8 holds it (no lone surrogates)
    st.just(""),
)
logs = st.lists(lines, max_size=12).map(lambda found: "\n".join(found).encode("utf-8"))
payloads = st.one_of(logs, logs.map(gzip.compress), st.binary(max_size=300))


def assert_accounted_for(result, data: bytes) -> None:
    """Records read = rows + rejects; each reject a rule's reason; no id twice."""
    if result.file_rejected:
        assert result.transactions.num_rows == 0 and len(result.rejects) == 1
    else:
        assert result.records_read == result.transactions.num_rows + len(result.rejects)
    for reject in result.rejects:
        assert reject.reason != UNREADABLE, (reject, data[:500])
        assert RULES.search(reject.reason), (reject.reason, data[:500])
    kept = result.transactions["transaction_id"].to_pylist()
    assert len(kept) == len(set(kept))
    assert set(result.transaction_items["transaction_id"].to_pylist()) == set(kept)
    numbers = [r.line_number for r in result.rejects if r.line_number is not None]
    assert len(numbers) == len(set(numbers)) or not result.records_read


@FUZZ
@given(payloads)
def test_the_transform_accounts_for_every_record_of_any_input(data):
    result = transform(data, "raw/incoming/fuzz.ndjson")

    assert_accounted_for(result, data)


KEY_PREFIXES = ["raw/incoming/", "raw/history/dt=2026-03-01/", "raw/", "lake/", "quarantine/",
                "audit/", "", "/raw/", "raw/incoming/../", "raw/incoming//", "other/"]  # fmt: skip
key_characters = characters.filter(lambda c: c not in "\r\n" and not 0xD800 <= ord(c) < 0xE000)
keys = st.tuples(st.sampled_from(KEY_PREFIXES), st.text(key_characters, max_size=40)).map("".join)
HANDLER_FUZZ = settings(
    FUZZ,
    max_examples=max(20, EXAMPLES // 5),  # a moto round trip each: ~0.3 s
    suppress_health_check=[*FUZZ.suppress_health_check, HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def lake(monkeypatch):
    with iceberg_lake(monkeypatch, "fuzz-lake"):
        yield boto3.client("s3")


def listed(client) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="fuzz-lake")
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


@HANDLER_FUZZ
@given(keys, payloads)
def test_the_handler_accounts_for_every_record_under_any_key(lake, key, data):
    # given: the object (a fresh name, so examples never meet), and the bucket as it was
    key = f"{key}-{uuid.uuid4().hex[:8]}"
    lake.put_object(Bucket="fuzz-lake", Key=key, Body=data)
    before = listed(lake)
    event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": "fuzz-lake"},
                                 "object": {"key": quote_plus(key)}}}]}  # fmt: skip

    # when
    response = lambda_handler(event, None)

    # then: never a failure worth a retry; only the lake's prefixes written, with plain keys
    assert response == {"batchItemFailures": []}
    written = listed(lake) - before
    assert all(k.startswith(layout.OUTPUT_PREFIXES) and not layout.key_problem(k) for k in written)
    if key.startswith(layout.OUTPUT_PREFIXES) or not key.startswith(layout.RAW):
        assert written == set()  # not the lake's input: neither read nor answered
        return
    (audit_key,) = [k for k in written if k.startswith(layout.AUDIT)]
    audit = json.loads(lake.get_object(Bucket="fuzz-lake", Key=audit_key)["Body"].read())
    assert audit["source_key"] == key
    rows = audit["rows_written"]["transactions"]
    if audit["file_rejected"]:
        assert (audit["records_read"], rows, audit["records_quarantined"]) == (0, 0, 1)
    else:
        assert audit["records_read"] == rows + audit["records_quarantined"]
    assert table_rows("transactions", row_filter=EqualTo("source_key", key)).num_rows == rows
