import json
from datetime import UTC, datetime

import boto3
import dagster as dg

from lake_contract import layout
from lambda_ingest.handler import lambda_handler
from supermarket_dagster import audit_log
from supermarket_dagster.defs.history.assets import history_backfill, raw_history_logs
from supermarket_dagster.defs.live.sensors import lake_audit_sensor
from tests.factories import ndjson, record

TODAY = datetime.now(UTC).date().isoformat()


def _land(lake, name, *records):
    """A live log ingested by the real handler, which writes its audit record."""
    key = f"raw/incoming/dt={TODAY}/{name}.ndjson"
    boto3.client("s3").put_object(Bucket=lake.bucket, Key=key, Body=ndjson(*records))
    notification = {"eventSource": "aws:s3", "eventTime": datetime.now(UTC).isoformat(),
                    "s3": {"bucket": {"name": lake.bucket}, "object": {"key": key}}}  # fmt: skip
    lambda_handler({"Records": [notification]}, None)
    return key


def _now(transaction_id):
    return record(transaction_id, transaction_datetime=datetime.now(UTC).isoformat())


def _tick(lake, cursor=None):
    with dg.build_sensor_context(cursor=cursor, resources={"lake": lake}) as context:
        return lake_audit_sensor(context)


def test_new_audit_records_become_materializations_of_their_day_partitions(lake):
    _land(lake, "a", _now("a1"), _now("a2"))
    last = _land(lake, "b", _now("b1"), record("bad", items=[]))

    result = _tick(lake)

    assert json.loads(result.cursor)["last"] == lake.objects().keys(layout.AUDIT)[-1]
    events = {e.asset_key.to_user_string(): e for e in result.asset_events}
    assert set(events) == {"transactions", "transaction_items"}
    transactions = events["transactions"]
    assert transactions.partition == TODAY
    assert transactions.metadata["rows_written"].value == 3
    assert transactions.metadata["source_files"].value == 2
    assert transactions.metadata["records_quarantined"].value == 1
    assert transactions.metadata["last_source_key"].value == last
    assert transactions.metadata["ingest_lag_seconds"].value >= 0
    assert events["transaction_items"].metadata["rows_written"].value == 6


def test_the_cursor_advances_and_nothing_is_counted_twice(lake):
    _land(lake, "a", _now("a1"))
    first = _tick(lake)

    again = _tick(lake, first.cursor)
    assert again.asset_events == [] and again.cursor == first.cursor

    _land(lake, "c", _now("c1"), _now("c2"))
    later = _tick(lake, first.cursor)
    (transactions,) = [
        e for e in later.asset_events if e.asset_key.to_user_string() == "transactions"
    ]
    assert transactions.metadata["rows_written"].value == 2  # only what landed since
    assert json.loads(later.cursor)["last"] > json.loads(first.cursor)["last"]


def test_a_long_backlog_is_read_in_bounded_ticks(lake, monkeypatch):
    monkeypatch.setattr(audit_log, "MAX_RECORDS_PER_TICK", 2)
    for name in "abc":
        _land(lake, name, _now(name))

    first = _tick(lake)
    second = _tick(lake, first.cursor)

    rows = [next(e for e in r.asset_events if e.asset_key.to_user_string() == "transactions")
            .metadata["rows_written"].value for r in (first, second)]  # fmt: skip
    assert rows == [2, 1]


def test_a_record_that_lands_late_and_out_of_order_is_still_reported_once(lake):
    _land(lake, "a", _now("a1"))
    first = _tick(lake)
    newest = json.loads(first.cursor)["last"]
    # A concurrent Lambda's record, stamped 2 s before the newest one, lands only now.
    late_ms = layout.audit_time_ms(newest) - 2_000
    late = json.loads(lake.objects().read(newest)) | {"source_key": "raw/incoming/late.ndjson"}
    late_key = f"{layout.audit_listing_start(late_ms)}-late.json"
    lake.objects().write(late_key, json.dumps(late).encode())

    second = _tick(lake, first.cursor)
    third = _tick(lake, second.cursor)

    (reported,) = [e for e in second.asset_events if e.asset_key.to_user_string() == "transactions"]
    assert reported.metadata["last_source_key"].value == "raw/incoming/late.ndjson"
    assert reported.metadata["rows_written"].value == 1
    assert third.asset_events == []  # reported once


def test_a_backfill_runs_records_are_not_reported_again_but_later_live_ones_are(lake):
    day = "2026-03-02"
    config = {"ops": {"raw_history_logs": {"config": {"transactions_per_day": 40, "skus": 50}}}}
    backfill = dg.materialize([raw_history_logs, history_backfill], resources={"lake": lake},
                              partition_key=day, run_config=config)  # fmt: skip
    assert backfill.success and lake.objects().keys(layout.AUDIT)  # the backfill's records

    quiet = _tick(lake)  # the run materialized its day itself: nothing to report twice

    assert quiet.asset_events == []
    _land(lake, "a", _now("a1"))
    live = _tick(lake, quiet.cursor)
    assert {(e.asset_key.to_user_string(), e.partition) for e in live.asset_events} == {
        ("transactions", TODAY), ("transaction_items", TODAY)}  # fmt: skip
