"""The Lambda handler against a moto server: S3, and the Iceberg tables in its Glue catalog."""

import gzip
import json
import random
import uuid
from urllib.parse import quote_plus

import boto3
import pytest
from botocore.exceptions import ClientError

from lake_contract import layout, tables
from lake_contract import s3 as lake_s3
from lambda_ingest import handler as handler_module
from lambda_ingest.committer import COMMIT_ORDER
from lambda_ingest.handler import lambda_handler
from tests.factories import ndjson, record
from tests.moto_server import iceberg_lake, table_rows

BUCKET = "supermarket-lake-test"


@pytest.fixture
def s3(monkeypatch):
    with iceberg_lake(monkeypatch, BUCKET):
        yield boto3.client("s3")


def s3_record(key, bucket=BUCKET):
    return {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-03-01T10:00:00.000Z",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "size": 1}},
    }


def direct_event(*keys):
    return {"Records": [s3_record(k) for k in keys]}


def sqs_event(*bodies):
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "r",
                "body": body if isinstance(body, str) else json.dumps(body),
                "eventSource": "aws:sqs",
            }
            for body in bodies
        ]
    }


def put(s3, key, data):
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return key


def keys(s3, prefix, bucket=BUCKET):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def lake_rows(s3, table):
    return table_rows(table).to_pylist()


def audits(s3, bucket=BUCKET):
    return [json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read())
            for k in keys(s3, layout.AUDIT, bucket)]  # fmt: skip


def test_warm_up_loads_the_tables_and_then_the_first_event_lands(s3):
    handler_module.warm_up()
    loaded = handler_module.lake_tables(
        tables.DEFAULT_DATABASE
    )._tables  # cached for the first commit
    assert set(COMMIT_ORDER) <= set(loaded)
    assert not audits(s3) and not lake_rows(s3, "transactions")  # it lands nothing itself
    key = put(s3, "raw/incoming/dt=2026-03-01/w.ndjson", ndjson(record("w")))

    assert lambda_handler(direct_event(key), None) == {"batchItemFailures": []}
    assert [r["transaction_id"] for r in lake_rows(s3, "transactions")] == ["w"]


def test_direct_event_lands_rows_and_an_audit_record(s3):
    key = put(s3, "raw/incoming/dt=2026-03-01/a.ndjson", ndjson(record("a"), record("b")))

    response = lambda_handler(direct_event(key), None)

    assert response == {"batchItemFailures": []}
    assert sorted(r["transaction_id"] for r in lake_rows(s3, "transactions")) == ["a", "b"]
    assert len(lake_rows(s3, "transaction_items")) == 4
    (audit,) = audits(s3)
    assert audit["source_key"] == key
    assert audit["records_read"] == 2 and audit["records_quarantined"] == 0
    assert audit["rows_written"] == {"transactions": 2, "transaction_items": 4}
    assert audit["lag_seconds"] is not None and audit["latest_transaction_at"]
    assert audit["rows_per_day"] == {"2026-03-01": {"transactions": 2, "transaction_items": 4}}


def test_sqs_batch_ingests_every_message_and_ignores_the_test_event(s3):
    a = put(s3, "raw/incoming/dt=2026-03-01/a.ndjson", ndjson(record("a")))
    b = put(s3, "raw/incoming/dt=2026-03-01/b.ndjson", ndjson(record("b")))
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}

    response = lambda_handler(sqs_event(test_event, direct_event(a), direct_event(b)), None)

    assert response == {"batchItemFailures": []}
    assert sorted(r["transaction_id"] for r in lake_rows(s3, "transactions")) == ["a", "b"]


def test_every_event_twice_in_any_order_and_mix_leaves_the_lake_as_once(s3):
    logs = {f"raw/incoming/dt=2026-03-01/{n}.ndjson": [record(f"{n}-{i}") for i in range(5)]
            for n in range(6)}  # fmt: skip
    sources = [put(s3, key, ndjson(*records)) for key, records in logs.items()]
    deliveries = [direct_event(k) for k in sources] + [sqs_event(direct_event(k)) for k in sources]
    random.Random(7).shuffle(deliveries)

    for delivery in deliveries:
        assert lambda_handler(delivery, None) == {"batchItemFailures": []}

    ids = [r["transaction_id"] for r in lake_rows(s3, "transactions")]
    assert len(ids) == len(set(ids)) == 30
    assert len(lake_rows(s3, "transaction_items")) == 60
    assert len(audits(s3)) == 12  # each delivery audited; the second replaced the first's rows


def test_a_batch_is_one_commit_per_table_and_a_source_twice_in_it_lands_once(s3):
    keys_ = [put(s3, f"raw/incoming/dt=2026-03-01/{n}.ndjson", ndjson(record(f"{n}")))
             for n in range(4)]  # fmt: skip
    event = sqs_event(*[direct_event(k) for k in keys_], direct_event(keys_[0]))

    assert lambda_handler(event, None) == {"batchItemFailures": []}

    assert sorted(r["transaction_id"] for r in lake_rows(s3, "transactions")) == [
        "0",
        "1",
        "2",
        "3",
    ]
    for table in ("transactions", "transaction_items"):
        appends = [s for s in _snapshots(table) if s.summary.operation.value == "append"]
        assert len(appends) == 1, table
    outputs = {tuple(a["outputs"]) for a in audits(s3)}
    assert len(outputs) == 1  # every source names the same two snapshots


def test_a_rewritten_source_replaces_its_rows(s3):
    key = put(s3, "raw/incoming/dt=2026-03-01/a.ndjson", ndjson(record("a"), record("b")))
    lambda_handler(direct_event(key), None)
    put(s3, key, ndjson(record("c")))

    lambda_handler(direct_event(key), None)

    assert [r["transaction_id"] for r in lake_rows(s3, "transactions")] == ["c"]
    assert len(lake_rows(s3, "transaction_items")) == 2


def test_a_source_delivered_again_unchanged_is_audited_again_and_not_committed(s3):
    key = put(s3, "raw/incoming/dt=2026-03-01/a.ndjson", ndjson(record("a"), record("b")))
    other = put(s3, "raw/incoming/dt=2026-03-01/c.ndjson", ndjson(record("c")))
    lambda_handler(direct_event(key), None)
    first_rows = {r["transaction_id"]: r["ingested_at"] for r in lake_rows(s3, "transactions")}
    before = {table: len(_snapshots(table)) for table in COMMIT_ORDER}

    again = sqs_event(direct_event(key), direct_event(other))
    assert lambda_handler(again, None) == {"batchItemFailures": []}

    rows = lake_rows(s3, "transactions")
    assert sorted(r["transaction_id"] for r in rows) == ["a", "b", "c"]
    assert len(lake_rows(s3, "transaction_items")) == 6
    # its rows were not rewritten: the new source's append is the only new snapshot
    assert {r["transaction_id"]: r["ingested_at"] for r in rows if r["source_key"] == key} == (
        first_rows
    )
    for table in COMMIT_ORDER:
        new = _snapshots(table)[before[table] :]
        assert [s.summary.operation.value for s in new] == ["append"], table
    # audited again, naming the snapshots its rows were found in (the first delivery's)
    records = [a for a in audits(s3) if a["source_key"] == key]
    assert len(records) == 2
    assert records[1]["outputs"] == records[0]["outputs"]
    assert records[1]["rows_written"] == {"transactions": 2, "transaction_items": 4}


def test_a_source_whose_rows_in_the_lake_differ_is_delivered_again_whole(s3):
    key = put(s3, "raw/incoming/dt=2026-03-01/a.ndjson", ndjson(record("a"), record("b")))
    lambda_handler(direct_event(key), None)
    # one basket's lines gone from the lake (its transaction row is still there)
    lines = tables.glue_catalog().load_table((tables.DEFAULT_DATABASE, "transaction_items"))
    lines.delete("transaction_id = 'b'")
    assert len(lake_rows(s3, "transaction_items")) == 2

    lambda_handler(direct_event(key), None)

    assert sorted(r["transaction_id"] for r in lake_rows(s3, "transaction_items")) == [
        "a", "a", "b", "b"
    ]  # fmt: skip
    assert sorted(r["transaction_id"] for r in lake_rows(s3, "transactions")) == ["a", "b"]


def test_a_failed_lookup_of_a_source_delivered_again_replaces_it(s3, monkeypatch):
    key = put(s3, "raw/incoming/dt=2026-03-01/a.ndjson", ndjson(record("a"), record("b")))
    lambda_handler(direct_event(key), None)

    def unreadable(*args):
        raise OSError("a file of the snapshot as loaded is gone")

    monkeypatch.setattr(handler_module, "unchanged_sources", unreadable)
    assert lambda_handler(direct_event(key), None) == {"batchItemFailures": []}

    assert sorted(r["transaction_id"] for r in lake_rows(s3, "transactions")) == ["a", "b"]
    assert len(lake_rows(s3, "transaction_items")) == 4
    assert len([a for a in audits(s3) if a["source_key"] == key]) == 2


def _snapshots(table):
    catalog = tables.glue_catalog()
    return catalog.load_table((tables.DEFAULT_DATABASE, table)).snapshots()


def test_url_encoded_keys_with_spaces_and_non_ascii_are_decoded(s3):
    key = put(s3, "raw/incoming/dt=2026-03-01/till 7 café+crème.ndjson", ndjson(record("a")))

    assert lambda_handler(sqs_event(direct_event(key)), None) == {"batchItemFailures": []}

    assert [r["source_key"] for r in lake_rows(s3, "transactions")] == [key]


def test_gzip_logs_are_ingested(s3):
    key = put(s3, "raw/incoming/dt=2026-03-01/a.ndjson.gz", gzip.compress(ndjson(record("a"))))

    lambda_handler(direct_event(key), None)

    assert [r["transaction_id"] for r in lake_rows(s3, "transactions")] == ["a"]


def test_bad_lines_are_quarantined_with_reasons_and_the_good_ones_land(s3):
    data = ndjson(record("a"), record("b", items=[]), "{oops", record("c"))
    key = put(s3, "raw/incoming/dt=2026-03-01/mixed.ndjson", data)

    assert lambda_handler(direct_event(key), None) == {"batchItemFailures": []}

    assert sorted(r["transaction_id"] for r in lake_rows(s3, "transactions")) == ["a", "c"]
    body = s3.get_object(Bucket=BUCKET, Key=layout.quarantine_key(key))["Body"].read()
    rejects = [json.loads(line) for line in body.splitlines()]
    assert [(r["line_number"], r["transaction_id"]) for r in rejects] == [(2, "b"), (3, None)]
    assert rejects[0]["reason"] == "items is empty"
    assert rejects[1]["raw"] == "{oops"
    (audit,) = audits(s3)
    assert audit["records_read"] == 4
    assert (
        audit["records_read"]
        == audit["rows_written"]["transactions"] + audit["records_quarantined"]
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (gzip.compress(ndjson(record("a"), record("b")))[:-10], "gzip"),
        (ndjson(record("a")) + b"\xff\xfe\n", "UTF-8"),
    ],
    ids=["truncated gzip", "not utf-8"],
)
def test_damaged_files_are_quarantined_whole(s3, data, reason):
    key = put(s3, "raw/incoming/dt=2026-03-01/bad.ndjson", data)

    assert lambda_handler(direct_event(key), None) == {"batchItemFailures": []}

    assert lake_rows(s3, "transactions") == [] and lake_rows(s3, "transaction_items") == []
    (reject,) = (
        s3.get_object(Bucket=BUCKET, Key=layout.quarantine_key(key))["Body"].read().splitlines()
    )
    assert reason in json.loads(reject)["reason"]
    assert audits(s3)[0]["file_rejected"] is True


def test_an_empty_file_is_audited_and_writes_no_rows(s3):
    key = put(s3, "raw/incoming/dt=2026-03-01/empty.ndjson", b"")

    assert lambda_handler(direct_event(key), None) == {"batchItemFailures": []}

    assert lake_rows(s3, "transactions") == [] and keys(s3, "quarantine/") == []
    assert audits(s3)[0]["records_read"] == 0


def test_a_transient_read_failure_fails_only_its_own_message(s3, monkeypatch):
    good = put(s3, "raw/incoming/dt=2026-03-01/good.ndjson", ndjson(record("g")))
    flaky = put(s3, "raw/incoming/dt=2026-03-01/flaky.ndjson", ndjson(record("f")))
    real_read = lake_s3.LakeBucket.read

    def throttled(bucket, key, *args):
        if key == flaky:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "GetObject")
        return real_read(bucket, key, *args)

    monkeypatch.setattr(lake_s3.LakeBucket, "read", throttled)
    event = sqs_event(direct_event(good), direct_event(flaky))

    response = lambda_handler(event, None)

    flaky_id = event["Records"][1]["messageId"]
    assert response == {"batchItemFailures": [{"itemIdentifier": flaky_id}]}
    assert [r["transaction_id"] for r in lake_rows(s3, "transactions")] == ["g"]
    assert [a["source_key"] for a in audits(s3)] == [good]  # no audit without its rows


def test_a_failed_commit_fails_every_message_of_the_batch_and_audits_none(s3, monkeypatch):
    sources = [put(s3, f"raw/incoming/dt=2026-03-01/{n}.ndjson", ndjson(record(f"{n}")))
               for n in range(3)]  # fmt: skip
    event = sqs_event(*[direct_event(k) for k in sources])

    def refused(*args, **kwargs):
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "x"}}, "UpdateTable")

    monkeypatch.setattr(handler_module, "commit_sources", refused)
    response = lambda_handler(event, None)

    assert len(response["batchItemFailures"]) == 3
    assert lake_rows(s3, "transactions") == [] and audits(s3) == []


def test_a_transient_failure_in_a_direct_invocation_raises_for_lambda_to_retry(s3, monkeypatch):
    key = put(s3, "raw/incoming/dt=2026-03-01/a.ndjson", ndjson(record("a")))

    def down(*args):
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "x"}}, "GetObject")

    monkeypatch.setattr(lake_s3.LakeBucket, "read", down)

    with pytest.raises(ClientError):
        lambda_handler(direct_event(key), None)


def test_a_message_that_is_not_a_notification_fails_towards_the_dead_letter_queue(s3):
    key = put(s3, "raw/incoming/dt=2026-03-01/a.ndjson", ndjson(record("a")))
    event = sqs_event("this is not json", {"unexpected": True}, direct_event(key))

    response = lambda_handler(event, None)

    poison = {event["Records"][0]["messageId"], event["Records"][1]["messageId"]}
    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == poison
    assert [r["transaction_id"] for r in lake_rows(s3, "transactions")] == ["a"]


def test_a_vanished_source_is_acknowledged(s3):
    assert lambda_handler(sqs_event(direct_event("raw/incoming/gone.ndjson")), None) == {
        "batchItemFailures": []
    }
    assert keys(s3, "audit/") == []


def test_lake_bucket_setting_sends_quarantine_and_audit_elsewhere(s3, monkeypatch):
    s3.create_bucket(Bucket="other-lake")
    monkeypatch.setenv("LAKE_BUCKET", "other-lake")
    key = put(s3, "raw/incoming/dt=2026-03-01/a.ndjson", ndjson(record("a"), "{bad"))

    lambda_handler(direct_event(key), None)

    assert keys(s3, "audit/") == [] and keys(s3, "quarantine/") == []
    assert len(audits(s3, "other-lake")) == 1 and keys(s3, "quarantine/", "other-lake")
    assert [r["transaction_id"] for r in lake_rows(s3, "transactions")] == ["a"]


def test_the_handlers_own_outputs_never_trigger_ingestion(s3):
    key = put(s3, "lake/transactions/dt=2026-03-01/x.parquet", b"not a log")

    assert lambda_handler(direct_event(key), None) == {"batchItemFailures": []}
    assert keys(s3, "audit/") == [] and keys(s3, "quarantine/") == []
