"""Compaction, expiry and orphan removal on the Iceberg tables, on a moto server: rows (as a
multiset), sums and schema unchanged; the open day too, while the Lambda appends and a reader
polls; a re-run that has nothing to do does nothing; metadata stays bounded."""

import threading
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from lake_contract import tables
from lambda_ingest.committer import commit_sources
from lambda_ingest.transform import transform
from supermarket_dagster import compaction
from supermarket_dagster.defs.history.checks import CHECK_CRON
from supermarket_dagster.defs.maintenance.assets import compacted_days, lake_housekeeping
from supermarket_dagster.defs.maintenance.checks import compaction_kept_every_row
from supermarket_dagster.defs.maintenance.schedules import (
    OPEN_DAY_CRON,
    nightly_compaction,
    open_day_compaction,
)
from supermarket_dagster.fingerprint import fingerprint
from supermarket_dagster.resources import LakeResource
from supermarket_queries.engine import LocalEngine
from tests.factories import ndjson, record
from tests.supermarket_dagster.conftest import BUCKET

DAY = date(2026, 3, 2)
TABLES = ("transactions", "transaction_items")


def _batch(lake: LakeResource, name: str, day: date = DAY, count: int = 5) -> None:
    """One Lambda batch: a source of `count` transactions committed on its own."""
    key = f"raw/incoming/dt={day}/{name}.ndjson"
    lines = [record(f"{name}-{n}", transaction_datetime=f"{day}T12:00:00Z") for n in range(count)]
    commit_sources(lake.tables(), [(key, transform(ndjson(*lines), key))], {})


def _files(lake: LakeResource, table: str, day: date = DAY) -> list:
    where = tables.day_filter(table, day)
    return list(lake.tables().current(table).scan(row_filter=where).plan_files())


def _rows(lake: LakeResource, table: str, day: date = DAY):
    return lake.tables().current(table).scan(row_filter=tables.day_filter(table, day)).to_arrow()


def test_a_day_of_small_files_becomes_one_file_per_table_with_every_row(lake):
    for n in range(8):
        _batch(lake, f"till-{n}")
    _batch(lake, "other-day", day=DAY + timedelta(days=1))
    before = {t: fingerprint(t, _rows(lake, t)) for t in TABLES}
    other = _rows(lake, "transactions", DAY + timedelta(days=1))

    done = {t: compaction.compact_day(lake.tables(), t, DAY) for t in TABLES}

    for table in TABLES:
        assert (done[table].files_rewritten, done[table].files_written) == (8, 1)
        assert len(_files(lake, table)) == 1
        assert fingerprint(table, _rows(lake, table)) == before[table] == done[table].fingerprint
    assert _rows(lake, "transactions", DAY + timedelta(days=1)).equals(other)  # untouched
    assert compaction.compact_day(lake.tables(), "transactions", DAY).noop  # nothing left to do


def test_large_files_are_left_as_they_are(lake):
    for n in range(5):
        _batch(lake, f"till-{n}")

    done = compaction.compact_day(lake.tables(), "transactions", DAY, small_bytes=1)

    assert done.noop and len(_files(lake, "transactions")) == 5


def test_a_compacted_file_of_many_rows_is_left_as_it_is_and_only_new_files_are_rewritten(lake):
    for n in range(4):
        _batch(lake, f"till-{n}")
    first = compaction.compact_day(lake.tables(), "transactions", DAY)
    (grown,) = [task.file.file_path for task in _files(lake, "transactions")]
    rows = first.rows
    for n in range(4, 8):
        _batch(lake, f"till-{n}")

    # A bound of as many rows as the compacted file holds: it is no longer small by rows.
    done = compaction.compact_day(lake.tables(), "transactions", DAY, small_rows=rows)

    assert (done.files_rewritten, done.files_written) == (4, 1)
    paths = [task.file.file_path for task in _files(lake, "transactions")]
    assert grown in paths and len(paths) == 2
    assert done.rows == _rows(lake, "transactions").num_rows - rows
    # By bytes alone, as before, the compacted file is rewritten with the new ones.
    for n in range(8, 12):
        _batch(lake, f"till-{n}")
    again = compaction.compact_day(lake.tables(), "transactions", DAY)
    assert again.files_rewritten == 6 and len(_files(lake, "transactions")) == 1


def test_the_open_day_is_compacted_while_batches_land_and_readers_see_no_row_missing_or_twice(
    lake,
):
    today = datetime.now(UTC).date()
    for n in range(6):
        _batch(lake, f"early-{n}", day=today)
    engine = LocalEngine(f"s3://{BUCKET}")
    landed, seen, errors, done = [30], [], [], threading.Event()

    def feed() -> None:  # the Lambda, meanwhile
        for n in range(8):
            _batch(lake, f"late-{n}", day=today)
            landed.append(landed[-1] + 5)

    def poll() -> None:
        while not done.is_set():
            floor = landed[-1]
            try:
                rows = engine.query("SELECT count(*) AS n, count(DISTINCT transaction_id) AS d "
                                    "FROM transactions").to_pylist()[0]  # fmt: skip
            except Exception as exc:  # surfaced below
                errors.append(repr(exc))
                continue
            seen.append((floor, rows["n"], rows["d"], landed[-1]))
            done.wait(0.05)

    threads = [threading.Thread(target=feed), threading.Thread(target=poll)]
    for thread in threads:
        thread.start()
    results = [compaction.compact_day(lake.tables(), t, today, min_files=2) for t in TABLES]
    threads[0].join()
    done.set()
    threads[1].join()

    assert errors == []
    assert seen and all(n == d for _, n, d, _ in seen)  # never a row twice
    assert all(floor <= n <= ceiling for floor, n, _, ceiling in seen)  # never a row missing
    assert all(not r.noop for r in results)
    final = _rows(lake, "transactions", today)
    assert final.num_rows == len(set(final["transaction_id"].to_pylist())) == 70  # every batch in


def test_the_asset_and_its_check_compact_a_day_and_prove_it(lake):
    for n in range(5):
        _batch(lake, f"till-{n}")
    instance = dg.DagsterInstance.ephemeral()

    result = dg.materialize([compacted_days, compaction_kept_every_row], instance=instance,
                            resources={"lake": lake}, partition_key=DAY.isoformat())  # fmt: skip

    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["tables_checked"].value == 2
    metadata = result.asset_materializations_for_node("compacted_days")[0].metadata
    assert metadata["transactions.files_rewritten"].value == 5
    assert metadata["transactions.files_written"].value == 1


def test_the_check_fails_when_the_compacted_files_lost_a_row(lake):
    for n in range(5):
        _batch(lake, f"till-{n}")
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize([compacted_days], instance=instance, resources={"lake": lake},
                   partition_key=DAY.isoformat())  # fmt: skip
    (written,) = _files(lake, "transactions")
    rows = _rows(lake, "transactions").slice(1)
    import pyarrow.parquet as pq

    with (
        lake.tables()
        .current("transactions")
        .io.new_output(written.file.file_path)
        .create(overwrite=True) as out
    ):  # the compacted file damaged in place: a row gone
        pq.write_table(rows, out)

    result = dg.materialize(
        [compacted_days, compaction_kept_every_row],
        instance=instance,
        resources={"lake": lake},
        selection=dg.AssetSelection.checks(compaction_kept_every_row),
        raise_on_error=False,
    )  # the check alone, as from the UI: every day

    (check,) = result.get_asset_check_evaluations()
    assert not check.passed
    assert "transactions" in check.metadata["problems"].value[0]


def test_housekeeping_expires_snapshots_and_removes_only_orphaned_old_files(lake):
    for n in range(8):
        _batch(lake, f"till-{n}")
    compaction.compact_day(lake.tables(), "transactions", DAY)  # 8 files replaced: orphans now
    location = lake.tables().current("transactions").metadata_location
    expired = compaction.expire_snapshots(lake.tables(), "transactions", keep=1)
    later = datetime.now(UTC) + compaction.ORPHAN_MIN_AGE + timedelta(minutes=1)

    young = compaction.remove_orphans(lake.tables(), lake.objects(), "transactions")
    swept = compaction.remove_orphans(lake.tables(), lake.objects(), "transactions", now=later)

    assert expired >= 8 and young.removed == 0  # nothing young is an orphan yet
    assert swept.removed >= 8  # the replaced data files at least
    assert _rows(lake, "transactions").num_rows == 40  # and the table still reads whole
    assert len(lake.tables().current("transactions").metadata.snapshots) == 1
    assert lake.tables().current("transactions").metadata_location != location


def test_housekeeping_as_an_asset_bounds_every_table(lake):
    for n in range(3):
        _batch(lake, f"till-{n}")

    result = dg.materialize([lake_housekeeping], resources={"lake": lake})

    assert result.success
    metadata = result.asset_materializations_for_node("lake_housekeeping")[0].metadata
    assert {f"{t}.orphans_removed" for t in tables.ICEBERG_TABLES} <= set(metadata)


def test_the_nightly_schedule_asks_for_the_day_just_closed():
    from supermarket_dagster.definitions import defs

    at = datetime(2026, 3, 3, 0, 30, tzinfo=UTC)
    request = nightly_compaction(dg.build_schedule_context(scheduled_execution_time=at))

    assert request.partition_key == "2026-03-02"
    job = defs.resolve_job_def("compact_days")
    assert job.asset_layer.asset_graph.asset_check_keys == {compaction_kept_every_row.check_key}


def test_the_open_day_is_compacted_only_when_something_landed_since_its_last_compaction(lake):
    at = datetime.combine(DAY, datetime.min.time(), UTC) + timedelta(hours=14, minutes=7)
    with (
        dg.instance_for_test() as instance,
        # Closed, it gives back the instance it opened (a leak breaks later tests' materialize).
        dg.build_schedule_context(
            instance=instance, scheduled_execution_time=at, resources={"lake": lake}
        ) as context,
    ):
        _batch(lake, "other-day", day=DAY - timedelta(days=1))
        assert isinstance(open_day_compaction(context), dg.SkipReason)  # none in the day yet

        _batch(lake, "till-0")
        _batch(lake, "till-1")
        request = open_day_compaction(context)
        assert isinstance(request, dg.RunRequest) and request.partition_key == DAY.isoformat()

        compacting = dg.materialize(
            [compacted_days], partition_key=DAY.isoformat(), resources={"lake": lake},
            instance=instance,
        )  # fmt: skip
        assert compacting.success
        skipped = open_day_compaction(context)
        assert isinstance(skipped, dg.SkipReason) and "since its compaction" in skipped.skip_message

        _batch(lake, "till-2")  # the feed goes on
        assert isinstance(open_day_compaction(context), dg.RunRequest)


def test_the_open_days_compaction_never_starts_with_the_live_day_checks():
    from dagster._utils.schedules import cron_string_iterator  # the pinned Dagster's cron

    def minutes(cron: str) -> set[int]:
        ticks = cron_string_iterator(datetime(2026, 3, 2, tzinfo=UTC).timestamp(), cron, "UTC")
        return {next(ticks).minute for _ in range(12)}  # one hour of 5-minute ticks

    compaction, checks = minutes(OPEN_DAY_CRON), minutes(CHECK_CRON)
    assert len(compaction) == len(checks) == 12  # both every 5 minutes
    assert compaction.isdisjoint(checks)


def test_a_compaction_whose_files_a_rival_compaction_replaced_first_plans_again(lake, monkeypatch):
    for n in range(6):
        _batch(lake, f"till-{n}")
    before = fingerprint("transaction_items", _rows(lake, "transaction_items"))
    lock, rivals = tables.commit_lock, []

    def rival_commits_first():
        if not rivals:  # after this compaction planned and wrote, before its commit
            rivals.append(None)  # the rival's own commit takes the lock as usual
            rivals[0] = compaction.compact_day(lake.tables(), "transaction_items", DAY)
        return lock()

    monkeypatch.setattr(tables, "commit_lock", rival_commits_first)
    done = compaction.compact_day(lake.tables(), "transaction_items", DAY)

    assert rivals[0].files_rewritten == 6 and not rivals[0].noop
    assert done.noop  # planned again: one compacted file, nothing left to rewrite
    assert len(_files(lake, "transaction_items")) == 1
    assert fingerprint("transaction_items", _rows(lake, "transaction_items")) == before
