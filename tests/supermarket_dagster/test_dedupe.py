"""An id landed from two sources: compaction's dedupe keeps the first copy, quarantines the later
one with a reason naming the id and the source that holds it, restates the source's audit record
so the day's reconciliation adds up, and does nothing the second time; on a moto server."""

import time
from datetime import date, timedelta

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.expressions import EqualTo

from lake_contract import layout, tables
from lake_contract.quarantine import quarantine_records
from lambda_ingest.events import SourceObject
from lambda_ingest.handler import ingest
from supermarket_dagster import dedupe
from supermarket_dagster.defs.history.checks import DAY_CHECKS, day_results
from supermarket_dagster.defs.maintenance.assets import compacted_days
from tests.factories import ndjson, record

DAY = date(2026, 3, 2)
AT = f"{DAY}T12:00:00Z"


def _ingest(lake, name: str, *records) -> str:
    key = f"raw/incoming/dt={DAY}/{name}.ndjson"
    lake.objects().write(key, ndjson(*records))
    ingest(SourceObject(bucket=lake.bucket, key=key, size=None, event_time=None), lake.bucket)
    return key


def _ids(lake, table: str) -> list[str]:
    rows = lake.tables().current(table).scan(selected_fields=("transaction_id",)).to_arrow()
    return sorted(rows["transaction_id"].to_pylist())


COUNTING = ("raw_records_reconcile", "transaction_id_unique", "total_matches_items")


def _reconciles(lake) -> dict[str, bool]:
    """The day checks that count rows (no reference tables here for the others)."""
    keys = [dg.AssetCheckKey(s.asset_key, s.name) for s in DAY_CHECKS if s.name in COUNTING]
    return {f"{r.key.asset_key.path[-1]}.{r.key.name}": r.passed
            for r in day_results(lake, DAY, keys)}  # fmt: skip


def test_the_later_copy_of_an_id_from_another_source_is_quarantined_and_the_day_reconciles(lake):
    first = _ingest(lake, "till-1", *[record(f"T-{n}", transaction_datetime=AT) for n in range(4)])
    again = record("T-2", transaction_datetime=AT, payment_method="cash")  # sent again, changed
    later = _ingest(lake, "till-2", record("T-9", transaction_datetime=AT), again)
    assert _ids(lake, "transactions").count("T-2") == 2
    assert not _reconciles(lake)["transactions.transaction_id_unique"]

    done = dedupe.dedupe_day(lake.tables(), lake.objects(), DAY)

    assert (done.ids, done.copies_removed, done.items_removed, done.sources) == (1, 1, 2, [later])
    assert _ids(lake, "transactions") == ["T-0", "T-1", "T-2", "T-3", "T-9"]
    assert _ids(lake, "transaction_items").count("T-2") == 2  # the first copy's two lines
    kept = lake.tables().current("transactions").scan().to_arrow()
    t2 = kept.filter(pc.equal(kept["transaction_id"], "T-2"))
    assert t2["source_key"].to_pylist() == [first]
    assert t2["payment_method"].to_pylist() == ["credit_card"]  # the first copy, not the later
    (quarantined,) = quarantine_records(lake.objects().read(layout.quarantine_key(later)))
    assert quarantined["transaction_id"] == "T-2" and quarantined["line_number"] == 2
    assert "T-2" in quarantined["reason"] and first in quarantined["reason"]
    assert dedupe.RULE in quarantined["reason"] and '"cash"' in quarantined["raw"]
    assert all(_reconciles(lake).values()), _reconciles(lake)

    assert dedupe.dedupe_day(lake.tables(), lake.objects(), DAY).copies_removed == 0
    assert len(quarantine_records(lake.objects().read(layout.quarantine_key(later)))) == 1


def test_a_redelivery_of_the_later_source_is_deduped_again_with_one_record(lake):
    first = _ingest(lake, "till-1", record("T-1", transaction_datetime=AT))
    later = _ingest(lake, "till-2", record("T-1", transaction_datetime=AT),
                    record("T-5", transaction_datetime=AT))  # fmt: skip
    dedupe.dedupe_day(lake.tables(), lake.objects(), DAY)
    _ingest(
        lake,
        "till-2",
        record("T-1", transaction_datetime=AT),
        record("T-5", transaction_datetime=AT),
    )  # fmt: skip  (the same log, delivered again)

    assert dedupe.dedupe_day(lake.tables(), lake.objects(), DAY).copies_removed == 1

    assert _ids(lake, "transactions") == ["T-1", "T-5"]
    records = quarantine_records(lake.objects().read(layout.quarantine_key(later)))
    assert [r["transaction_id"] for r in records] == ["T-1"] and first in records[0]["reason"]
    assert all(_reconciles(lake).values()), _reconciles(lake)


def test_the_copy_whose_log_arrived_first_stays_even_when_it_was_ingested_again_later(lake):
    first = _ingest(lake, "till-1", record("T-1", transaction_datetime=AT))
    time.sleep(1.1)  # S3's LastModified counts seconds
    later = _ingest(lake, "till-2", record("T-1", transaction_datetime=AT))
    # Its notification delivered again: the same object, ingested last.
    ingest(SourceObject(bucket=lake.bucket, key=first, size=None, event_time=None), lake.bucket)

    dedupe.dedupe_day(lake.tables(), lake.objects(), DAY)

    kept = lake.tables().current("transactions").scan().to_arrow()
    assert kept["source_key"].to_pylist() == [first]
    (quarantined,) = quarantine_records(lake.objects().read(layout.quarantine_key(later)))
    assert first in quarantined["reason"]
    assert all(_reconciles(lake).values()), _reconciles(lake)


def test_compaction_runs_the_dedupe_and_reports_it(lake):
    _ingest(lake, "till-1", *[record(f"T-{n}", transaction_datetime=AT) for n in range(3)])
    for n in range(4):
        _ingest(lake, f"till-dup-{n}", record("T-0", transaction_datetime=AT),
                record(f"U-{n}", transaction_datetime=AT))  # fmt: skip

    result = dg.materialize(
        [compacted_days], resources={"lake": lake}, partition_key=DAY.isoformat()
    )

    metadata = result.asset_materializations_for_node("compacted_days")[0].metadata
    assert metadata["dedupe_copies_removed"].value == 4
    assert metadata["dedupe_sources"].value == 4
    assert _ids(lake, "transactions") == ["T-0", "T-1", "T-2", "U-0", "U-1", "U-2", "U-3"]
    assert all(_reconciles(lake).values()), _reconciles(lake)


def test_a_batch_that_failed_after_its_items_commit_is_retried_without_doubling(lake, monkeypatch):
    # The committer looks sources up in the items table (committed first), so a retry replaces
    # the items its failed attempt committed; nothing is left for the dedupe to repair.
    from lambda_ingest import committer

    real = committer._expired

    def fail_the_transactions_commit(table):  # called inside each table's commit
        if table.name()[-1] == "transactions" and not failed:
            failed.append(table)
            raise OSError("connection reset before the transactions commit")
        return real(table)

    failed: list = []
    monkeypatch.setattr(committer, "_expired", fail_the_transactions_commit)
    key = f"raw/incoming/dt={DAY}/till-1.ndjson"
    lake.objects().write(key, ndjson(record("T-1", transaction_datetime=AT),
                                     record("T-2", transaction_datetime=AT)))  # fmt: skip
    source = SourceObject(bucket=lake.bucket, key=key, size=None, event_time=None)
    with pytest.raises(OSError):
        ingest(source, lake.bucket)
    assert _ids(lake, "transaction_items") == ["T-1"] * 2 + ["T-2"] * 2  # items landed
    assert _ids(lake, "transactions") == []  # transactions did not

    ingest(source, lake.bucket)  # the retry

    assert _ids(lake, "transaction_items") == ["T-1"] * 2 + ["T-2"] * 2
    assert _ids(lake, "transactions") == ["T-1", "T-2"]
    assert dedupe.items_committed_twice(lake.tables(), DAY) == 0
    assert all(_reconciles(lake).values()), _reconciles(lake)


def _commit_items_again(lake, source: str, later: timedelta) -> None:
    """The source's item lines appended once more, as a committer before the items lookup did
    when it retried a batch whose transactions commit had failed: a new ingestion's stamp."""
    items = lake.tables().current("transaction_items")
    rows = items.scan(row_filter=EqualTo("source_key", source)).to_arrow()
    stamps = pc.add(rows["ingested_at"], pa.scalar(later, pa.duration("ms")))
    at = rows.schema.get_field_index("ingested_at")
    rows = rows.set_column(at, rows.schema.field(at), stamps.cast(rows.schema.field(at).type))
    with tables.commit_lock():
        items.append(rows)


def test_item_lines_one_source_committed_twice_are_made_once_and_the_rest_left(lake):
    twice = _ingest(lake, "till-1", record("T-1", transaction_datetime=AT),
                    record("T-2", transaction_datetime=AT))  # fmt: skip
    once = _ingest(lake, "till-2", record("T-3", transaction_datetime=AT))
    _commit_items_again(lake, twice, timedelta(seconds=40))
    assert _ids(lake, "transaction_items") == ["T-1"] * 4 + ["T-2"] * 4 + ["T-3"] * 2
    assert not _reconciles(lake)["transactions.raw_records_reconcile"]

    assert dedupe.items_committed_twice(lake.tables(), DAY) == 4

    assert _ids(lake, "transaction_items") == ["T-1"] * 2 + ["T-2"] * 2 + ["T-3"] * 2
    lines = lake.tables().current("transaction_items").scan().to_arrow()
    assert set(lines.filter(pc.equal(lines["source_key"], once))["transaction_id"].to_pylist()) == {
        "T-3"
    }
    assert all(_reconciles(lake).values()), _reconciles(lake)
    assert dedupe.items_committed_twice(lake.tables(), DAY) == 0  # nothing the second time


def test_a_dedupe_long_after_the_ingestion_is_still_what_the_day_check_reads(lake, monkeypatch):
    from supermarket_dagster import lake_day

    monkeypatch.setattr(lake_day, "SLACK", timedelta(seconds=2))  # the check's search window
    _ingest(lake, "till-1", record("T-1", transaction_datetime=AT))
    _ingest(lake, "till-2", record("T-1", transaction_datetime=AT),
            record("T-2", transaction_datetime=AT))  # fmt: skip
    time.sleep(4)  # the dedupe runs well after the window around the rows' ingestion

    assert dedupe.dedupe_day(lake.tables(), lake.objects(), DAY).copies_removed == 1

    assert all(_reconciles(lake).values()), _reconciles(lake)


def test_a_dedupe_after_the_audit_log_was_digested_is_what_the_day_check_reads(lake, monkeypatch):
    from supermarket_dagster import audit_digest

    # Windows of a second, trusted a second after they end: the check below digests the
    # ingestion's windows for good before the dedupe restates a source ingested in them.
    monkeypatch.setattr(audit_digest, "WINDOWS_MS", (1_000, 60_000))
    monkeypatch.setattr(audit_digest, "OVERLAP_MS", 0)
    monkeypatch.setattr(audit_digest, "SETTLED", timedelta(seconds=1))
    _ingest(lake, "till-1", record("T-1", transaction_datetime=AT))
    _ingest(lake, "till-2", record("T-1", transaction_datetime=AT),
            record("T-2", transaction_datetime=AT))  # fmt: skip
    time.sleep(3)
    assert not _reconciles(lake)["transactions.transaction_id_unique"]
    assert lake.objects().keys(layout.AUDIT_DIGESTS)  # the ingestion's past, digested

    assert dedupe.dedupe_day(lake.tables(), lake.objects(), DAY).copies_removed == 1

    assert all(_reconciles(lake).values()), _reconciles(lake)
