"""The day checks on a moto server: all pass on data the assets wrote, and each one fails, with
useful metadata, on the fault it exists to catch (made with a rogue commit to the table)."""

import dataclasses
import gzip
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pytest
from pyiceberg.expressions import And, EqualTo
from pyiceberg.types import StringType

from lake_contract import layout
from lake_contract.s3 import LakeBucket
from lambda_ingest.events import SourceObject
from lambda_ingest.handler import ingest
from supermarket_dagster import file_tallies, lake_day, quality
from supermarket_dagster.defs.history import checks
from supermarket_dagster.defs.history.assets import history_backfill, raw_history_logs
from supermarket_dagster.defs.history.checks import fact_table_day_checks
from supermarket_dagster.defs.reference.assets import skus, supermarkets
from supermarket_dagster.resources import LakeResource
from tests.factories import audit, ndjson, record
from tests.moto_server import catalog_entries, iceberg_lake, restore_catalog_entries
from tests.supermarket_dagster.conftest import BUCKET

DAY, NEXT_DAY = "2026-03-02", "2026-03-03"
ALL_CHECKS = {
    ("transactions", "raw_records_reconcile"),
    ("transactions", "transaction_id_unique"),
    ("transactions", "store_ids_known"),
    ("transactions", "total_matches_items"),
    ("transactions", "schema_matches"),
    ("transaction_items", "sku_ids_known"),
    ("transaction_items", "schema_matches"),
}
SKUS = 300
# A log filed under DAY whose till ran past midnight, with one line the transform rejects.
STRADDLING = "raw/history/dt=2026-03-02/late-till.ndjson"
ITEMS = [{"sku_id": "SKU0001", "quantity": 2, "unit_price": 1.49}]
STRADDLING_LOG = ndjson(
    record("LATE-1", transaction_datetime="2026-03-02T23:58:00Z", items=ITEMS),
    record("LATE-2", transaction_datetime="2026-03-02T23:59:59.999Z", items=ITEMS),
    record("LATE-3", transaction_datetime="2026-03-03T00:00:01Z", items=ITEMS),
    "{not json",
)


Evaluations = dict[tuple[str, str], dg.AssetCheckEvaluation]


def _evaluations(result: dg.ExecuteInProcessResult) -> Evaluations:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def _values(evaluation: dg.AssetCheckEvaluation) -> dict:
    return {k: v.value for k, v in evaluation.metadata.items()}


def run_checks(lake, day: str) -> Evaluations:
    """The day's checks alone, as the automation sensor or the UI launches them: no asset runs."""
    result = dg.materialize(
        [supermarkets, skus, history_backfill, fact_table_day_checks],
        selection=dg.AssetSelection.checks(fact_table_day_checks),
        resources={"lake": lake},
        tags={"dagster/partition": day},
        raise_on_error=False,
    )
    evaluations = _evaluations(result)
    assert {e.partition for e in evaluations.values()} == {day}
    return evaluations


@pytest.fixture(scope="module")
def backfilled():
    """Reference data and two backfilled days on a moto server, built once for the module;
    the checks run inside each backfill run. Yields the lake, its objects, its tables'
    catalog entries and those runs."""
    with pytest.MonkeyPatch.context() as monkeypatch, iceberg_lake(monkeypatch, BUCKET):
        lake = LakeResource(bucket=BUCKET)
        reference = {"ops": {"skus": {"config": {"skus": SKUS}}}}
        assert dg.materialize([supermarkets, skus], resources={"lake": lake},
                              run_config=reference).success  # fmt: skip
        lake.objects().write(STRADDLING, STRADDLING_LOG)
        config = {"ops": {"raw_history_logs": {"config": {"transactions_per_day": 400,
                                                          "skus": SKUS}}}}  # fmt: skip
        runs = {}
        for day in (DAY, NEXT_DAY):
            result = dg.materialize(
                [raw_history_logs, history_backfill, fact_table_day_checks],
                resources={"lake": lake},
                partition_key=day,
                run_config=config,
            )
            assert result.success
            runs[day] = _evaluations(result)
        objects = {key: lake.objects().read(key) for key in lake.objects().keys("")}
        yield lake, objects, catalog_entries(), runs


@pytest.fixture(autouse=True, params=["once", "again"])
def checked(request, monkeypatch):
    """Each test twice: its day checked as a backfill's (once, its rows read) and as today's
    (again after each change: from the files' tallies, kept with the reconciled sources)."""
    if request.param == "again":
        monkeypatch.setattr(file_tallies, "first_kept_day", lambda now=None: date.min)
    return request.param


@pytest.fixture
def history(backfilled):
    """The backfill runs' check evaluations, with the lake put back as the backfill left it:
    its objects, and each Iceberg table pointing at the snapshot it had."""
    lake, objects, entries, runs = backfilled
    bucket = lake.objects()
    bucket.delete_many(sorted(set(bucket.keys("")) - set(objects)))
    bucket.write_many(objects)
    restore_catalog_entries(entries)
    return runs


@pytest.fixture
def lake(backfilled):
    return backfilled[0]


def _passed(evaluations) -> set[tuple[str, str]]:
    return {key for key, e in evaluations.items() if e.passed}


def _table(lake, name):
    return lake.tables().current(name)


def _day_source(day: str) -> str:
    """The simulator's log of the day (not the straddling one)."""
    return f"raw/history/dt={day}/history-s0-00000.ndjson"


def _of(source: str, day: str):
    return And(EqualTo("source_key", source), EqualTo("dt", day))


def _source_rows(lake, name: str, source: str, day: str) -> pa.Table:
    rows = _table(lake, name).scan(row_filter=_of(source, day)).to_arrow()
    assert rows.num_rows, (name, source, day)
    return rows


def _rewrite(lake, name: str, source: str, day: str, change) -> pa.Table:
    """A rogue commit replacing one source's rows of the day with `change(rows)`."""
    changed = change(_source_rows(lake, name, source, day))
    _table(lake, name).overwrite(changed, overwrite_filter=_of(source, day))
    return changed


def _set(table: pa.Table, column: str, row: int, value) -> pa.Table:
    values = table[column].to_pylist()
    values[row] = value
    index = table.schema.get_field_index(column)
    return table.set_column(index, table.schema.field(column), pa.array(values, table[column].type))


def test_every_check_passes_on_backfilled_days_in_the_backfill_run_itself(history, lake):
    for day, evaluations in history.items():
        assert set(evaluations) == ALL_CHECKS
        assert _passed(evaluations) == ALL_CHECKS, {k: _values(e) for k, e in evaluations.items()}
        assert all(e.severity == dg.AssetCheckSeverity.ERROR for e in evaluations.values())
        assert {e.partition for e in evaluations.values()} == {day}

    first = _values(history[DAY][("transactions", "raw_records_reconcile")])
    second = _values(history[NEXT_DAY][("transactions", "raw_records_reconcile")])
    # The straddling log: 2 rows on DAY, 1 on NEXT_DAY, its rejected line at home on DAY.
    assert first["quarantined_records"] == 1 and second["quarantined_records"] == 0
    assert first["raw_records"] == first["lake_rows"] + 1
    assert second["raw_records"] == second["lake_rows"]
    assert first["lake_rows"] + second["lake_rows"] == 400 + 400 + 3
    assert _values(history[DAY][("transactions", "transaction_id_unique")])["rows"] == \
        first["lake_rows"]  # fmt: skip


def test_checks_still_pass_after_a_day_is_reprocessed_and_has_two_audit_records(
    history, lake, checked, monkeypatch
):
    assert dg.materialize([history_backfill], resources={"lake": lake}, partition_key=DAY).success
    assert len(lake.objects().keys(layout.AUDIT)) == 3 + 2  # three logs, two of them on DAY
    tallied = []
    tally_day = file_tallies.tally_day
    monkeypatch.setattr(file_tallies, "tally_day", lambda *a, **k: tallied.append(a) or
                        tally_day(*a, **k))  # fmt: skip

    assert _passed(run_checks(lake, DAY)) == ALL_CHECKS
    assert len(tallied) == (2 if checked == "again" else 0)  # a table each, or the rows read


def test_rows_deleted_from_the_table_fail_reconciliation_naming_their_source(history, lake):
    source = _day_source(DAY)
    lost = _source_rows(lake, "transactions", source, DAY).num_rows
    _table(lake, "transactions").delete(_of(source, DAY))

    evaluation = run_checks(lake, DAY)[("transactions", "raw_records_reconcile")]

    assert not evaluation.passed
    values = _values(evaluation)
    assert values["raw_records"] - values["lake_rows"] - values["quarantined_records"] == lost
    assert values["sources_disagreeing"] == 1
    assert values["disagreeing"] == {source: f"transactions: 0 rows in the lake, audit says {lost}"}
    assert run_checks(lake, NEXT_DAY)[("transactions", "raw_records_reconcile")].passed


@pytest.mark.parametrize("lost_from", [("transactions",), ("transaction_items", "transactions")])
def test_a_straddling_log_counts_on_each_day_its_audit_puts_rows(history, lake, lost_from):
    # With every row of it gone from NEXT_DAY, only its audit record naming the day finds it.
    for table in lost_from:
        _table(lake, table).delete(_of(STRADDLING, NEXT_DAY))

    after = {day: run_checks(lake, day)[("transactions", "raw_records_reconcile")]
             for day in (DAY, NEXT_DAY)}  # fmt: skip

    assert after[DAY].passed  # its two rows on DAY and its quarantined line are all there
    assert not after[NEXT_DAY].passed
    assert _values(after[NEXT_DAY])["disagreeing"] == {
        STRADDLING: "; ".join(f"{t}: 0 rows in the lake, audit says 1" for t in lost_from)
    }


def test_a_deleted_quarantine_object_fails_reconciliation(history, lake):
    lake.objects().delete(layout.quarantine_key(STRADDLING))

    evaluation = run_checks(lake, DAY)[("transactions", "raw_records_reconcile")]

    assert not evaluation.passed
    assert _values(evaluation)["quarantined_records"] == 0
    assert _values(evaluation)["disagreeing"] == {STRADDLING: "0 quarantine lines, audit says 1"}


def test_a_raw_log_not_ingested_is_in_flight_at_first_and_fails_once_overdue(
    history, lake, monkeypatch
):
    pending = "raw/incoming/dt=2026-03-02/pending.ndjson"
    lake.objects().write(
        pending, ndjson(record("P-1", transaction_datetime="2026-03-02T12:00:00Z"))
    )

    landed_just_now = _values(run_checks(lake, DAY)[("transactions", "raw_records_reconcile")])
    monkeypatch.setattr(lake_day, "IN_FLIGHT", timedelta(0))
    overdue = run_checks(lake, DAY)[("transactions", "raw_records_reconcile")]

    assert landed_just_now["sources_in_flight"] == 1 and landed_just_now["sources_disagreeing"] == 0
    assert not overdue.passed
    assert list(_values(overdue)["disagreeing"]) == [pending]


def test_a_live_file_ingested_later_is_found_in_the_audit_log(history, lake):
    live = "raw/incoming/dt=2026-03-02/till-7.ndjson"
    sale = record("L-1", transaction_datetime="2026-03-02T18:00:00+01:00", store_id="STORE0002",
                  items=ITEMS)  # fmt: skip
    lake.objects().write(live, ndjson(sale))
    ingest(SourceObject(bucket=lake.bucket, key=live, size=None, event_time=None), lake.bucket)

    evaluation = run_checks(lake, DAY)[("transactions", "raw_records_reconcile")]

    assert evaluation.passed, _values(evaluation)
    before = _values(history[DAY][("transactions", "raw_records_reconcile")])
    assert _values(evaluation)["lake_rows"] == before["lake_rows"] + 1
    assert _values(evaluation)["sources"] == before["sources"] + 1


def test_a_file_rejected_whole_reconciles_as_its_one_quarantine_record(history, lake):
    corrupt = "raw/incoming/dt=2026-03-02/till-9.ndjson.gz"
    lake.objects().write(corrupt, gzip.compress(ndjson(record("G-1")))[:-6])  # truncated gzip
    audit = ingest(SourceObject(bucket=lake.bucket, key=corrupt, size=None, event_time=None),
                   lake.bucket)  # fmt: skip

    evaluation = run_checks(lake, DAY)[("transactions", "raw_records_reconcile")]

    assert audit.file_rejected and audit.records_read == 0
    assert evaluation.passed, _values(evaluation)
    before = _values(history[DAY][("transactions", "raw_records_reconcile")])
    assert _values(evaluation)["quarantined_records"] == before["quarantined_records"] + 1
    assert _values(evaluation)["raw_records"] == before["raw_records"] + 1


def test_rows_appended_twice_fail_uniqueness_with_the_ids(history, lake):
    rows = _source_rows(lake, "transactions", _day_source(DAY), DAY)
    _table(lake, "transactions").append(rows)
    ids = rows["transaction_id"].to_pylist()

    evaluations = run_checks(lake, DAY)

    unique = evaluations[("transactions", "transaction_id_unique")]
    assert not unique.passed
    assert _values(unique)["duplicate_rows"] == len(ids)
    assert _values(unique)["duplicate_sample"] == ", ".join(sorted(ids)[:5])
    reconcile = _values(evaluations[("transactions", "raw_records_reconcile")])
    assert reconcile["lake_rows"] == reconcile["raw_records"] - 1 + len(ids)  # -1: quarantined
    assert not evaluations[("transactions", "raw_records_reconcile")].passed


def test_an_unknown_store_fails_store_ids_known(history, lake):
    _rewrite(lake, "transactions", _day_source(DAY), DAY,
             lambda t: _set(t, "store_id", 3, "STORE0999"))  # fmt: skip

    evaluations = run_checks(lake, DAY)

    stores = evaluations[("transactions", "store_ids_known")]
    assert not stores.passed
    assert _values(stores)["unknown_rows"] == 1
    assert _values(stores)["unknown_sample"] == "STORE0999"
    assert _values(stores)["known_ids"] == 5
    assert evaluations[("transactions", "raw_records_reconcile")].passed  # counts are intact


def test_an_unknown_sku_fails_sku_ids_known(history, lake):
    _rewrite(lake, "transaction_items", _day_source(NEXT_DAY), NEXT_DAY,
             lambda t: _set(_set(t, "sku_id", 0, "SKU9999"), "sku_id", 5, "SKU9999"))  # fmt: skip

    evaluation = run_checks(lake, NEXT_DAY)[("transaction_items", "sku_ids_known")]

    assert not evaluation.passed
    assert _values(evaluation)["unknown_rows"] == 2
    assert _values(evaluation)["unknown_sample"] == "SKU9999"
    assert run_checks(lake, DAY)[("transaction_items", "sku_ids_known")].passed


def test_a_total_that_does_not_match_its_items_fails_to_the_cent(history, lake):
    table = _source_rows(lake, "transactions", _day_source(DAY), DAY)
    total = table["total_amount"][7].as_py()
    _rewrite(lake, "transactions", _day_source(DAY), DAY,
             lambda t: _set(t, "total_amount", 7, total + total.__class__("0.01")))  # fmt: skip

    evaluation = run_checks(lake, DAY)[("transactions", "total_matches_items")]

    assert not evaluation.passed
    values = _values(evaluation)
    assert values["mismatched_rows"] == 1
    assert values["mismatched_sample"] == table["transaction_id"][7].as_py()
    assert values["without_items_rows"] == 0 and values["orphan_item_rows"] == 0


def test_items_without_their_transaction_fail_total_matches_items(history, lake):
    first = _source_rows(lake, "transactions", _day_source(DAY), DAY)["transaction_id"][0]
    first = first.as_py()
    # The first transaction is gone, its items stay.
    _rewrite(lake, "transactions", _day_source(DAY), DAY, lambda t: t.slice(1))

    values = _values(run_checks(lake, DAY)[("transactions", "total_matches_items")])

    assert values["orphan_item_sample"] == first
    assert values["orphan_item_rows"] >= 1
    assert values["mismatched_rows"] == 0 and values["without_items_rows"] == 0


def test_a_table_whose_schema_drifted_fails_schema_matches(history, lake):
    with _table(lake, "transactions").update_schema() as update:
        update.add_column("loyalty_card", StringType())

    evaluations = run_checks(lake, DAY)

    wrong = evaluations[("transactions", "schema_matches")]
    assert not wrong.passed
    assert _values(wrong)["difference"] == "unexpected loyalty_card"
    assert evaluations[("transaction_items", "schema_matches")].passed
    # Its rows still count: nothing is lost, the table only differs from the contract.
    assert evaluations[("transactions", "raw_records_reconcile")].passed


def test_a_data_file_that_is_not_parquet_fails_schema_and_reconciliation(history, lake):
    (task,) = (
        _table(lake, "transaction_items")
        .scan(row_filter=_of(_day_source(NEXT_DAY), NEXT_DAY))
        .plan_files()
    )
    unreadable = task.file.record_count
    key = task.file.file_path.removeprefix(f"s3://{BUCKET}/")
    lake.objects().write(key, b"PAR1 truncated")

    evaluations = run_checks(lake, NEXT_DAY)

    wrong = _values(evaluations[("transaction_items", "schema_matches")])["difference"]
    assert wrong.startswith("unreadable:")
    reconcile = _values(evaluations[("transactions", "raw_records_reconcile")])
    assert reconcile["items_in_lake"] == 0 and reconcile["items_expected"] >= unreadable
    assert not evaluations[("transactions", "raw_records_reconcile")].passed


def test_the_sensor_requests_todays_and_yesterdays_checks_after_new_rows_land():
    defs = dg.Definitions(
        assets=[supermarkets, skus, raw_history_logs, history_backfill],
        asset_checks=[fact_table_day_checks],
        sensors=[checks.fact_table_checks_sensor],
        resources={"lake": LakeResource(bucket="never-read")},
    )
    now = datetime.now(UTC)
    today, yesterday, older = (str(now.date() - timedelta(days=n)) for n in (0, 1, 5))
    with dg.instance_for_test() as instance:
        before = now - timedelta(minutes=6)  # a cron tick ago: the rows below land after it
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                                  evaluation_time=before)  # fmt: skip
        for day in (today, yesterday, older):  # as the audit sensor reports the Lambda's rows
            event = dg.AssetMaterialization("transactions", partition=day)
            instance.report_runless_asset_event(event)

        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)

    requested = {
        (str(r.key.asset_key.to_user_string()), r.key.name): sorted(
            r.true_subset.expensively_compute_partition_keys()
        )
        for r in tick.results
        if isinstance(r.key, dg.AssetCheckKey) and not r.true_subset.is_empty
    }
    on_transactions = {k: v for k, v in requested.items() if k[0] == "transactions"}
    assert set(on_transactions) == {k for k in ALL_CHECKS if k[0] == "transactions"}
    assert all(days == sorted([yesterday, today]) for days in on_transactions.values())
    assert again.total_requested == 0  # once per cron tick, not on every evaluation
    assert first.total_requested == 0


def test_only_the_latest_audit_record_of_a_source_counts():
    older = audit("raw/a.ndjson", records_read=1)
    newer = audit("raw/a.ndjson", records_read=2)
    other = audit("raw/b.ndjson", records_read=3)

    latest = quality.latest_per_source(
        [("audit/dt=2026-03-03/0000000000002-a.json", newer),
         ("audit/dt=2026-03-02/0000000000003-b.json", other),
         ("audit/dt=2026-03-02/0000000000001-a.json", older)]
    )  # fmt: skip

    assert latest == {"raw/a.ndjson": newer, "raw/b.ndjson": other}


def _first_arguments(monkeypatch, method: str) -> list:
    """What every call to LakeBucket.<method> is given first from now on (a prefix, keys)."""
    seen = []
    real = getattr(LakeBucket, method)

    def counted(self, first, *args, **kwargs):
        seen.append(first)
        return real(self, first, *args, **kwargs)

    monkeypatch.setattr(LakeBucket, method, counted)
    return seen


def test_a_day_lists_only_its_own_raw_logs_and_finds_a_neighbours_log_by_its_rows(
    history, lake, monkeypatch
):
    # Listing the neighbouring days too made every check of today list all of yesterday's logs.
    listed = _first_arguments(monkeypatch, "listing")
    evaluation = run_checks(lake, NEXT_DAY)[("transactions", "raw_records_reconcile")]

    assert evaluation.passed, _values(evaluation)
    # The straddling log, filed under DAY, is one of NEXT_DAY's sources through its row there.
    assert _values(evaluation)["lake_rows"] == 400 + 1
    day = date.fromisoformat(NEXT_DAY)
    assert sorted(p for p in listed if p.startswith("raw/")) == [
        layout.day_prefix(layout.RAW_HISTORY, day),
        layout.day_prefix(layout.RAW_INCOMING, day),
    ]


def test_the_days_of_a_step_read_each_audit_record_once(history, lake, monkeypatch):
    # Right after a range lands its stretch of the log is not digested yet, so each day reads
    # it record by record, and the range's days share that stretch.
    def undigested(_lake, start_ms, _end_ms, _now):
        return [], start_ms

    monkeypatch.setattr(lake_day.audit_digest, "settled_entries", undigested)
    read = _first_arguments(monkeypatch, "read_many")
    objects = lake.objects()
    shared = lake_day.SharedReads(objects)
    for day in (date.fromisoformat(DAY), date.fromisoformat(NEXT_DAY)):
        rows = {t: lake_day.read_day(lake.tables(), t, day).rows
                for t in ("transactions", "transaction_items")}  # fmt: skip
        reconciled = lake_day.reconcile_day(
            objects, day, lake_day.SourceRows.of(rows["transactions"]),
            lake_day.SourceRows.of(rows["transaction_items"]), shared,
        )  # fmt: skip
        assert reconciled.passed, reconciled

    audit_reads = [key for keys in read for key in keys if key.startswith(layout.AUDIT)]
    assert audit_reads, "no audit record read one by one: the test would prove nothing"
    assert len(audit_reads) == len(set(audit_reads))


def test_large_days_are_checked_fewer_at_once_by_their_item_rows_from_the_manifest(
    history, lake, monkeypatch
):
    days = [datetime.fromisoformat(d).date() for d in (DAY, NEXT_DAY)]
    items = _table(lake, "transaction_items")
    largest = max(items.scan(row_filter=EqualTo("dt", d)).count() for d in (DAY, NEXT_DAY))
    assert checks.days_at_once(lake, days) == checks.MOST_DAYS_AT_ONCE  # small days

    monkeypatch.setattr(checks, "CHECKED_ROWS_AT_ONCE", 2 * largest)
    assert checks.days_at_once(lake, days) == 2
    monkeypatch.setattr(checks, "CHECKED_ROWS_AT_ONCE", 2 * largest - 1)
    assert checks.days_at_once(lake, days) == 1
    monkeypatch.setattr(checks, "CHECKED_ROWS_AT_ONCE", largest // 2)
    assert checks.days_at_once(lake, days) == 1  # a day larger than the budget: still checked


# --- a check counting the sources the last one settled (lake_day.Reconciled) -------------------


def _day_rows(lake, day: date) -> dict[str, lake_day.SourceRows]:
    return {t: lake_day.SourceRows.of(lake_day.read_day(lake.tables(), t, day).rows)
            for t in ("transactions", "transaction_items")}  # fmt: skip


LATER = timedelta(days=1)


def _reconcile(lake, day: str, known=None, later: bool = False):
    """The day reconciled now, or (later) a day from now, when the log's records are old."""
    rows = _day_rows(lake, date.fromisoformat(day))
    now = datetime.now(UTC) + (LATER if later else timedelta(0))
    return lake_day.reconcile_day_since(lake.objects(), date.fromisoformat(day),
                                        rows["transactions"], rows["transaction_items"],
                                        known=known, now=now)  # fmt: skip


def _later(settled: lake_day.Reconciled) -> lake_day.Reconciled:
    """The same sources and raw logs, as if settled and listed by a check a day from now, before
    the one `later`."""
    return dataclasses.replace(settled, through=settled.through + LATER,
                               swept=settled.swept + LATER)  # fmt: skip


def _fresh_sources(monkeypatch) -> list[list[str]]:
    """The sources each reconciliation counts afresh (not as settled), call by call."""
    seen = []
    reconcile = quality.reconcile

    def spy(day, sources, settled=()):
        sources = list(sources)
        seen.append(sorted(s.source_key for s in sources if s.touches(day)))
        return reconcile(day, sources, settled)

    monkeypatch.setattr(quality, "reconcile", spy)
    return seen


def test_a_check_counts_the_sources_the_last_one_settled_without_their_records(
    history, lake, monkeypatch
):
    fresh = _fresh_sources(monkeypatch)
    full, settled = _reconcile(lake, DAY)
    assert full.passed
    assert set(settled.sources) == set(fresh[0])
    # The straddling log's quarantine lines are counted on every check.
    assert [s for s, entry in settled.sources.items() if entry.quarantined] == [STRADDLING]
    parsed, windows = [], []
    monkeypatch.setattr(lake_day.AuditRecord, "from_json",
                        _counting(lake_day.AuditRecord.from_json, parsed))  # fmt: skip
    monkeypatch.setattr(lake_day, "_audit_records", _counting(lake_day._audit_records, windows))

    again, kept = _reconcile(lake, DAY, _later(settled), later=True)

    assert again == full
    assert fresh[1] == [STRADDLING]
    assert len(parsed) == 1  # the straddling log's record, read by its key
    # The log read since the last check, not back to when the straddling log landed.
    [(_, start, *_)] = windows
    assert start == _later(settled).through - lake_day.SLACK
    assert kept.sources == settled.sources
    assert lake_day.Reconciled.decode(kept.encode()) == kept


def test_a_check_right_after_another_reads_no_record_that_one_counted(history, lake, monkeypatch):
    # The records that settled the sources finished within this check's window of the log.
    fresh = _fresh_sources(monkeypatch)
    full, settled = _reconcile(lake, DAY)
    parsed = []
    monkeypatch.setattr(lake_day.AuditRecord, "from_json",
                        _counting(lake_day.AuditRecord.from_json, parsed))  # fmt: skip

    again, kept = _reconcile(lake, DAY, settled)

    assert again == full
    assert fresh[1] == [STRADDLING]
    assert len(parsed) <= 2
    assert kept.sources == settled.sources


def _counting(function, calls: list):
    def counted(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)

    return counted


def test_a_settled_source_whose_quarantine_object_is_deleted_fails(history, lake):
    _, settled = _reconcile(lake, DAY)
    lake.objects().delete(layout.quarantine_key(STRADDLING))

    found, kept = _reconcile(lake, DAY, _later(settled), later=True)

    assert found.disagreeing == {STRADDLING: "0 quarantine lines, audit says 1"}
    assert STRADDLING not in kept.sources


def test_a_settled_source_whose_rows_changed_is_counted_afresh_and_fails(history, lake):
    _, settled = _reconcile(lake, DAY)
    source = _day_source(DAY)
    lost = _source_rows(lake, "transactions", source, DAY).num_rows
    _table(lake, "transactions").delete(_of(source, DAY))

    found, _ = _reconcile(lake, DAY, _later(settled), later=True)

    assert not found.passed
    assert found.disagreeing == {source: f"transactions: 0 rows in the lake, audit says {lost}"}


def test_a_settled_source_with_a_newer_audit_record_is_counted_by_it(history, lake):
    source = _day_source(DAY)
    _, settled = _reconcile(lake, DAY)
    assert source in settled.sources
    since = lake_day.Reconciled(datetime.now(UTC) - timedelta(seconds=1), settled.sources)
    (key,) = [k for k in lake.objects().keys(layout.AUDIT) if layout.source_id(source) in k]
    old = lake_day.AuditRecord.from_json(lake.objects().read(key))
    stated = old.rows_per_day[DAY]["transactions"]
    newer = dataclasses.replace(
        old, finished_at=datetime.now(UTC), records_read=old.records_read + 1,
        rows_per_day={DAY: {**old.rows_per_day[DAY], "transactions": stated + 1}},
    )  # fmt: skip
    lake.objects().write(newer.key, newer.to_json())

    found, kept = _reconcile(lake, DAY, since)

    assert found.disagreeing == {
        source: f"transactions: {stated} rows in the lake, audit says {stated + 1}"
    }
    assert source not in kept.sources


def test_a_settled_source_of_another_day_whose_rows_are_all_gone_is_still_counted(history, lake):
    _, settled = _reconcile(lake, NEXT_DAY)
    assert STRADDLING in settled.sources  # one row on NEXT_DAY, filed under DAY
    _table(lake, "transactions").delete(_of(STRADDLING, NEXT_DAY))
    _table(lake, "transaction_items").delete(_of(STRADDLING, NEXT_DAY))

    found, _ = _reconcile(lake, NEXT_DAY, _later(settled), later=True)

    assert not found.passed
    assert STRADDLING in found.disagreeing


# --- between two whole listings of the day's raw logs (lake_day.raw_logs) ----------------------


def _listed(monkeypatch) -> list[tuple[str, str]]:
    """The prefix and start of each listing under raw/, call by call."""
    calls = []
    listing = LakeBucket.listing

    def spy(self, prefix, after="", limit=None):
        if prefix.startswith(layout.RAW):
            calls.append((prefix, after))
        return listing(self, prefix, after, limit)

    monkeypatch.setattr(LakeBucket, "listing", spy)
    return calls


def _land(lake, key: str, transaction_id: str) -> None:
    sale = record(transaction_id, transaction_datetime="2026-03-02T18:00:00Z",
                  store_id="STORE0002", items=ITEMS)  # fmt: skip
    lake.objects().write(key, ndjson(sale))


def test_between_whole_listings_a_check_lists_each_run_of_logs_past_its_newest(
    history, lake, monkeypatch
):
    _, settled = _reconcile(lake, DAY)
    assert _day_source(DAY) in settled.raw and STRADDLING in settled.raw
    lost = "raw/history/dt=2026-03-02/history-s0-00001.ndjson"  # the run's next, never ingested
    _land(lake, lost, "LOST-1")
    listed = _listed(monkeypatch)

    found, kept = _reconcile(lake, DAY, _later(settled), later=True)

    # One request: the straddling log's name has no number, so it is no run.
    assert listed == [("raw/history/dt=2026-03-02/history-s0-", _day_source(DAY))]
    assert list(found.disagreeing) == [lost]
    assert kept.raw.keys() == settled.raw.keys() | {lost}
    assert kept.swept == settled.swept + LATER  # not listed whole


def test_a_log_out_of_its_runs_order_is_found_by_the_next_whole_listing(history, lake, monkeypatch):
    _, settled = _reconcile(lake, DAY)
    odd = "raw/history/dt=2026-03-02/history-s0-00000-again.ndjson"  # before the run's newest
    _land(lake, odd, "ODD-1")

    between, _ = _reconcile(lake, DAY, _later(settled), later=True)
    listed = _listed(monkeypatch)
    swept_a_day_ago = dataclasses.replace(_later(settled), swept=settled.swept)
    found, kept = _reconcile(lake, DAY, swept_a_day_ago, later=True)

    assert between.passed  # not seen yet: SWEEP_EVERY is how late a lost log may be found
    assert sorted(listed) == [(layout.day_prefix(p, date.fromisoformat(DAY)), "")
                              for p in (layout.RAW_HISTORY, layout.RAW_INCOMING)]  # fmt: skip
    assert list(found.disagreeing) == [odd]
    assert kept.swept > swept_a_day_ago.swept + lake_day.SWEEP_EVERY  # listed whole now


def test_a_producer_first_seen_by_its_rows_has_its_run_listed_whole(history, lake, monkeypatch):
    _, settled = _reconcile(lake, DAY)
    lost, live = (f"raw/incoming/dt=2026-03-02/till7-{n:08d}.ndjson" for n in (0, 1))
    _land(lake, lost, "T7-0")
    _land(lake, live, "T7-1")
    ingest(SourceObject(bucket=lake.bucket, key=live, size=None, event_time=None), lake.bucket)
    listed = _listed(monkeypatch)

    found, kept = _reconcile(lake, DAY, _later(settled), later=True)

    assert sorted(listed) == [("raw/history/dt=2026-03-02/history-s0-", _day_source(DAY)),
                              ("raw/incoming/dt=2026-03-02/till7-", "")]  # fmt: skip
    assert list(found.disagreeing) == [lost]
    assert {lost, live} <= kept.raw.keys()


def test_past_the_most_runs_a_check_lists_the_day_whole(history, lake, monkeypatch):
    _, settled = _reconcile(lake, DAY)
    monkeypatch.setattr(lake_day, "MOST_RUNS", 0)
    listed = _listed(monkeypatch)

    found, kept = _reconcile(lake, DAY, _later(settled), later=True)

    assert found.passed
    assert len(listed) == 2 and all(after == "" for _, after in listed)
    assert kept.swept > settled.swept + lake_day.SWEEP_EVERY  # listed whole now
