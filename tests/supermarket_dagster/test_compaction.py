import itertools
import json
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lake_contract import layout, money
from lake_contract.s3 import LakeBucket
from lambda_ingest.events import SourceObject
from lambda_ingest.handler import ingest
from simulator.history import HistoryOptions, history_key, plan_files, render_file
from simulator.reference import build_reference
from supermarket_dagster.compaction import (
    FOOTER_KEY,
    compact_day,
    survey_day,
)
from supermarket_dagster.defs.history.assets import history_backfill
from supermarket_dagster.defs.maintenance.assets import compacted_days
from supermarket_dagster.defs.maintenance.checks import compaction_kept_every_row

DAY = date(2026, 3, 2)
TABLES = ("transactions", "transaction_items")


@pytest.fixture
def s3(lake):
    return lake.objects()


def _write_logs(s3, day, files, per_file, seed=0):
    """Raw history logs of `files` small files for one day; returns their keys."""
    options = HistoryOptions(location=f"s3://{s3.name}", transactions=files * per_file,
                             start=day, end=day, file_transactions=per_file, skus=300,
                             seed=seed)  # fmt: skip
    reference = build_reference(options.stores, options.skus, options.seed)
    keys = []
    for file in plan_files(options):
        keys.append(history_key(options, file))
        s3.write(keys[-1], render_file(options, reference, file))
    return keys


def _ingest(s3, keys):
    for key in keys:
        ingest(SourceObject(bucket=s3.name, key=key, size=None, event_time=None), s3.name)


def _day_keys(s3, table, day=DAY):
    return s3.keys(layout.day_prefix(layout.table_prefix(table), day))


def _read(s3, key):
    return pq.read_table(pa.BufferReader(s3.read(key)))


def _day_rows(s3, table, day=DAY):
    return pa.concat_tables([_read(s3, k) for k in _day_keys(s3, table, day)])


def _all_objects(s3):
    return {k: s3.read(k) for k in s3.keys(layout.LAKE)}


def _multiset(rows, without=()):
    """Every row as a tuple of its values, counted: equal multisets, equal rows."""
    names = [n for n in rows.column_names if n not in without]
    return Counter(tuple(r[n] for n in names) for r in rows.select(names).to_pylist())


def _sums(s3, day=DAY):
    transactions, items = (
        _day_rows(s3, "transactions", day),
        _day_rows(s3, "transaction_items", day),
    )
    line_cents = pc.multiply(pc.cast(items["quantity"], pa.int64()),
                             money.to_cents(items["unit_price"]))  # fmt: skip
    return {
        "transactions": transactions.num_rows,
        "items": items.num_rows,
        "total_amount": pc.sum(transactions["total_amount"]).as_py(),
        "quantity": pc.sum(items["quantity"]).as_py(),
        "line_amount_cents": pc.sum(line_cents).as_py(),
    }


def _snapshot(s3, day=DAY):
    return {t: _multiset(_day_rows(s3, t, day)) for t in TABLES}


def _compact(lake, instance, day=DAY, **config):
    return dg.materialize(
        [compacted_days, compaction_kept_every_row],
        resources={"lake": lake},
        partition_key=day.isoformat(),
        instance=instance,
        run_config={"ops": {"compacted_days": {"config": config}}},
    )


def _check_alone(lake, instance):
    """The check run on its own, as from the UI: it verifies every compacted day on record."""
    result = dg.materialize([compacted_days, compaction_kept_every_row],
                            selection=dg.AssetSelection.checks(compaction_kept_every_row),
                            resources={"lake": lake}, instance=instance,
                            raise_on_error=False)  # fmt: skip
    return result.get_asset_check_evaluations()[0]


def _metadata(result):
    materialization = result.asset_materializations_for_node("compacted_days")[0]
    return {k: v.value for k, v in materialization.metadata.items()}


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def test_a_closed_day_of_small_files_becomes_one_object_per_table_with_every_row(
    lake, s3, instance
):
    # given a past day ingested by the real Lambda code as 60 small files
    _ingest(s3, _write_logs(s3, DAY, files=60, per_file=20))
    before, sums = _snapshot(s3), _sums(s3)
    source_schema = pq.read_schema(pa.BufferReader(s3.read(_day_keys(s3, "transactions")[0])))
    assert all(len(_day_keys(s3, t)) == 60 for t in TABLES)

    result = _compact(lake, instance)

    assert result.success
    assert _snapshot(s3) == before  # every row, with every value, exactly as often
    assert _sums(s3) == sums
    for table in TABLES:
        (key,) = _day_keys(s3, table)
        assert layout.parse_compacted_key(key) is not None
    compacted = _read(s3, _day_keys(s3, "transactions")[0])
    assert compacted.schema.equals(source_schema)  # readers see the very same columns and types
    times = compacted["transaction_datetime"]
    assert pc.all(pc.greater_equal(times[1:], times[:-1])).as_py()  # sorted for pruning
    metadata = _metadata(result)
    assert metadata["transactions.objects_before"] == 60
    assert metadata["transactions.objects_after"] == 1
    assert metadata["transactions.rows_before"] == metadata["transactions.rows_after"] == 1200
    assert metadata["transaction_items.rows_after"] == sums["items"]
    assert metadata["transactions.bytes_after"] < metadata["transactions.bytes_before"]
    assert metadata["fingerprint_after"] == metadata["fingerprint_before"]
    assert metadata["fingerprint_after"]["transactions"]["total_amount_cents"] == round(
        sums["total_amount"] * 100
    )
    assert metadata["duration_s"] > 0
    (check,) = result.get_asset_check_evaluations()
    assert check.passed


def test_parts_stay_within_the_target_size_and_cover_consecutive_times(lake, s3, instance):
    _ingest(s3, _write_logs(s3, DAY, files=40, per_file=40))
    before = _snapshot(s3)
    target = 12_000

    result = _compact(lake, instance, target_bytes=target)

    assert result.success and _snapshot(s3) == before
    for table in TABLES:
        sizes = [len(s3.read(k)) for k in _day_keys(s3, table)]
        assert len(sizes) >= 2 and max(sizes) <= target
        assert sum(sizes) / len(sizes) >= target / 3  # few parts, not many small ones
    keys = _day_keys(s3, "transactions")
    times = [_read(s3, k)["transaction_datetime"].to_pylist() for k in keys]
    ranges = [(t[0], t[-1]) for t in times]
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(ranges))
    footer = pq.read_metadata(pa.BufferReader(s3.read(keys[0]))).metadata[FOOTER_KEY.encode()]
    assert json.loads(footer) | {"generation": None} == {
        "table": "transactions", "dt": DAY.isoformat(), "generation": None, "part": 0,
        "parts": len(keys), "rows": _read(s3, keys[0]).num_rows, "target_bytes": target,
        "replaced_objects": 40,
    }  # fmt: skip


def test_an_open_day_is_left_alone(lake, s3, instance):
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    for day in (today, yesterday):
        _ingest(s3, _write_logs(s3, day, files=5, per_file=10, seed=day.day))
    before = _all_objects(s3)

    open_today = _compact(lake, instance, day=today)
    # yesterday has ended, but a 48 h grace keeps it open for late files and redeliveries
    in_grace = _compact(lake, instance, day=yesterday, grace_hours=48)

    for result in (open_today, in_grace):
        assert result.success
        assert result.get_asset_materialization_events() == []
        assert result.get_asset_check_evaluations() == []
    assert _all_objects(s3) == before
    closed = _compact(lake, instance, day=yesterday, grace_hours=0)
    assert len(_day_keys(s3, "transactions", yesterday)) == 1 and closed.success


def test_compacting_a_compacted_day_again_changes_nothing(lake, s3, instance):
    _ingest(s3, _write_logs(s3, DAY, files=20, per_file=10))
    _compact(lake, instance, target_bytes=20_000)
    before = _all_objects(s3)

    result = _compact(lake, instance, target_bytes=20_000)

    assert result.success and _metadata(result)["noop"] is True
    assert _all_objects(s3) == before


def test_a_backfill_rerun_on_a_compacted_day_leaves_no_duplicate(lake, s3, instance):
    _write_logs(s3, DAY, files=30, per_file=15)
    dg.materialize([history_backfill], resources={"lake": lake}, partition_key=DAY.isoformat())
    before = {t: _multiset(_day_rows(s3, t), ["ingested_at"]) for t in TABLES}
    _compact(lake, instance, target_bytes=25_000)
    parts = {t: len(_day_keys(s3, t)) for t in TABLES}
    rerun_started = datetime.now(UTC)

    rerun = dg.materialize([history_backfill], resources={"lake": lake},
                           partition_key=DAY.isoformat(), instance=instance)  # fmt: skip

    assert rerun.success
    # the same rows, once each; only ingested_at is new
    assert {t: _multiset(_day_rows(s3, t), ["ingested_at"]) for t in TABLES} == before
    for table in TABLES:
        keys = _day_keys(s3, table)
        assert all(layout.parse_compacted_key(k) for k in keys) and len(keys) == parts[table]
        oldest = pc.min(_day_rows(s3, table)["ingested_at"]).as_py()
        assert oldest >= rerun_started.replace(microsecond=0)  # none left from the first run
    assert _check_alone(lake, instance).passed  # the backfill recorded the new compaction


def test_a_late_redelivery_is_flagged_by_the_check_and_folded_in_by_compacting_again(
    lake, s3, instance
):
    keys = _write_logs(s3, DAY, files=12, per_file=10)
    _ingest(s3, keys)
    before = {t: _multiset(_day_rows(s3, t), ["ingested_at"]) for t in TABLES}
    _compact(lake, instance)

    _ingest(s3, keys[3:4])  # S3 redelivers one event after the day was compacted

    check = _check_alone(lake, instance)
    assert not check.passed
    assert any("in more than one object" in p for p in check.metadata["details"].value)
    result = _compact(lake, instance)
    assert result.success and _check_alone(lake, instance).passed
    assert {t: _multiset(_day_rows(s3, t), ["ingested_at"]) for t in TABLES} == before
    metadata = _metadata(result)
    assert metadata["transactions.rows_superseded"] == 10  # the stale copy of that source


@pytest.mark.parametrize("tamper", ["drop", "duplicate"])
def test_the_check_fails_when_a_row_is_dropped_or_duplicated(lake, s3, instance, tamper):
    _ingest(s3, _write_logs(s3, DAY, files=8, per_file=10))
    assert _compact(lake, instance).success
    (key,) = _day_keys(s3, "transaction_items")
    rows = _read(s3, key)
    changed = rows.slice(1) if tamper == "drop" else pa.concat_tables([rows, rows.slice(0, 1)])
    s3.write(key, _parquet(changed))

    check = _check_alone(lake, instance)

    assert not check.passed
    (problem,) = check.metadata["details"].value
    assert "transaction_items" in problem
    expected_rows = rows.num_rows + (-1 if tamper == "drop" else 1)
    assert f"'rows': {expected_rows}" in problem


def _parquet(rows):
    sink = pa.BufferOutputStream()
    pq.write_table(rows, sink)
    return sink.getvalue().to_pybytes()


class _PausedSwap(LakeBucket):
    """Real S3 calls, but the deletes wait until `resume` is set (so that a reader surely polls
    inside the window), or never come at all (a run that dies after its writes)."""

    def __init__(self, *args, resume=None, crash=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.resume, self.crash = resume, crash

    def delete_many(self, keys):
        if self.crash:
            raise RuntimeError("the run died here")
        assert self.resume.wait(timeout=30), "no reader polled inside the swap"
        super().delete_many(keys)


def test_a_reader_polling_during_the_swap_never_sees_fewer_rows_and_duplicates_only_inside_it(
    lake, s3
):
    _ingest(s3, _write_logs(s3, DAY, files=30, per_file=10))
    rows_before = sum(len(_day_rows(s3, t)) for t in TABLES)
    seen_twice = threading.Event()
    objects = _PausedSwap(lake.bucket, resume=seen_twice)
    reader = LakeBucket(lake.bucket)
    seen, failed, done = [], [], threading.Event()

    def poll():
        while not done.is_set():
            started = time.time()
            try:
                rows = sum(s.rows.rows for s in survey_day(reader, DAY))
            except Exception as exc:  # an object listed, then deleted before its GET
                failed.append(repr(exc))
                continue
            seen.append((started, time.time(), rows))
            if rows > rows_before:
                seen_twice.set()

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        compaction = compact_day(objects, DAY, target_bytes=10_000_000)
    finally:
        done.set()
        poller.join()

    assert seen and min(rows for _, _, rows in seen) >= rows_before  # never fewer
    twice = [(s, e) for s, e, rows in seen if rows > rows_before]
    assert twice
    # duplicates only by a reader whose listing and reads overlapped the swap window
    assert all(s <= compaction.swap_finished and e >= compaction.swap_started for s, e in twice)
    assert sum(len(_day_rows(s3, t)) for t in TABLES) == rows_before
    assert all("NoSuchKey" in f for f in failed), failed


def test_a_compaction_that_dies_mid_swap_is_flagged_and_repaired_by_the_next(lake, s3, instance):
    _ingest(s3, _write_logs(s3, DAY, files=10, per_file=10))
    _compact(lake, instance)  # a first generation, so the crash leaves two behind
    _ingest(s3, _write_logs(s3, DAY, files=1, per_file=10, seed=7))  # a late source
    before = _snapshot(s3)

    with pytest.raises(RuntimeError):  # dies after writing every new part, before any delete
        compact_day(_PausedSwap(lake.bucket, crash=True), DAY, 20_000)

    surveys = survey_day(lake.objects(), DAY)
    assert all(s.sources_in_several_places for s in surveys)  # what the check flags
    assert all(s.rows.rows > sum(before[s.table].values()) for s in surveys)
    result = _compact(lake, instance)
    assert result.success and result.get_asset_check_evaluations()[0].passed
    assert _snapshot(s3) == before


def test_the_nightly_schedule_asks_for_the_day_that_has_just_closed_with_its_check():
    from supermarket_dagster.compaction import DEFAULT_GRACE, require_closed
    from supermarket_dagster.definitions import defs
    from supermarket_dagster.defs.maintenance.schedules import nightly_compaction

    tick = datetime(2026, 3, 3, 6, 30, tzinfo=UTC)

    request = nightly_compaction(dg.build_schedule_context(scheduled_execution_time=tick))

    assert request.partition_key == "2026-03-02"
    require_closed(date(2026, 3, 2), DEFAULT_GRACE, now=tick)  # closed by then: no OpenDay
    job = defs.resolve_job_def("compact_closed_days")
    assert job.asset_layer.asset_graph.asset_check_keys == {compaction_kept_every_row.check_key}


def test_a_lambda_file_landing_in_a_compacted_day_asks_for_the_day_to_be_compacted_again(
    lake, s3, instance
):
    from supermarket_dagster.defs.maintenance.sensors import late_files_sensor

    def tick(cursor):
        with dg.build_sensor_context(cursor=cursor, instance=instance,
                                     resources={"lake": lake}) as context:  # fmt: skip
            return late_files_sensor(context)

    incoming = f"{layout.day_prefix(layout.RAW_INCOMING, DAY)}till-7.ndjson"
    history = _write_logs(s3, DAY, files=3, per_file=10)
    s3.write(incoming, s3.read(history[0]))  # the first log arrives live instead
    _ingest(s3, [incoming, *history[1:]])
    before = tick(None)  # files that landed before any compaction: nothing to do
    _compact(lake, instance)
    assert before.run_requests == [] and tick(before.cursor).run_requests == []

    _ingest(s3, [incoming])  # the Lambda gets the event again, after the day was compacted
    late = tick(before.cursor)

    assert [r.partition_key for r in late.run_requests] == [DAY.isoformat()]
    assert tick(late.cursor).run_requests == []  # asked once
    assert not _check_alone(lake, instance).passed
    _compact(lake, instance)  # the run the sensor asked for
    assert _check_alone(lake, instance).passed
