"""A range of days in one run, as a backfill with the history assets' BackfillPolicy launches it:
each day lands, keeps its own metadata and its own check results, a partly bad day ends with its
good rows in the table and its bad ones in quarantine, and a missing day fails the run by name."""

import json
from datetime import date

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lake_contract import layout
from supermarket_dagster import backfill
from supermarket_dagster.defs.history.assets import (
    history_backfill,
    raw_history_logs,
    reingest_history_days,
)
from supermarket_dagster.defs.history.checks import fact_table_day_checks
from supermarket_dagster.defs.reference.assets import skus, supermarkets
from supermarket_dagster.partitions import days_backfill_policy
from tests.factories import ndjson, record
from tests.moto_server import table_rows

DAYS = ["2026-03-01", "2026-03-02", "2026-03-03"]
PER_DAY = 250
CATALOGUE = {"skus": 300, "stores": 5}
BAD_LOG = "raw/history/dt=2026-03-02/till-9.ndjson"


def _range_tags(first: str, last: str) -> dict[str, str]:
    """What the daemon tags a run of a range with (one run for the range, not one per day)."""
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def _raw(lake, day: str) -> list[dict]:
    """The day's raw records that parse as JSON (the bad log's "{not json" does not)."""
    keys = lake.objects().keys(layout.day_prefix(layout.RAW_HISTORY, date.fromisoformat(day)))
    records = []
    for line in (ln for k in keys for ln in lake.objects().read(k).splitlines()):
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def _load(lake, assets, raise_on_error=True) -> dg.ExecuteInProcessResult:
    config = {"ops": {"raw_history_logs": {"config": {"transactions_per_day": PER_DAY,
                                                      **CATALOGUE}}}}  # fmt: skip
    return dg.materialize(
        assets,
        resources={"lake": lake},
        run_config=config if raw_history_logs in assets else None,
        tags=_range_tags(DAYS[0], DAYS[-1]),
        raise_on_error=raise_on_error,
    )


def test_the_history_assets_backfill_a_range_of_days_per_run():
    assert days_backfill_policy.max_partitions_per_run >= 30  # a month of the demo: one run
    for asset in (raw_history_logs, history_backfill):
        assert asset.backfill_policy == days_backfill_policy


def test_a_range_run_lands_every_day_with_its_own_metadata_and_check_results(lake):
    reference = {"ops": {"skus": {"config": {"skus": CATALOGUE["skus"]}}}}
    assert dg.materialize([supermarkets, skus], resources={"lake": lake},
                          run_config=reference).success  # fmt: skip
    assert _load(lake, [raw_history_logs]).success
    # Given a day whose raw logs are partly bad: two good lines and two the transform rejects.
    known = _raw(lake, DAYS[0])[0]  # a store and a SKU of the catalogue
    line = {**known["items"][0], "quantity": 1}
    good = [record(f"BAD-DAY-{n}", transaction_datetime="2026-03-02T12:00:00Z",
                   store_id=known["store_id"], items=[line]) for n in (1, 2)]  # fmt: skip
    lake.objects().write(BAD_LOG, ndjson(good[0], "{not json", record("X", store_id=7), good[1]))

    # When the range is backfilled and checked in one run.
    result = _load(lake, [history_backfill, fact_table_day_checks])

    # Then each day holds exactly its raw logs' good rows, and says so in its own metadata.
    assert result.success
    transactions = table_rows("transactions")
    recorded = {
        (m.asset_key.to_user_string(), m.partition): {k: v.value for k, v in m.metadata.items()}
        for m in (e.materialization for e in result.get_asset_materialization_events())
    }
    for day in DAYS:
        raw = _raw(lake, day)
        expected = len(raw) - (1 if day == "2026-03-02" else 0)  # the line with store_id 7
        in_lake = transactions.filter(pc.equal(transactions["dt"], date.fromisoformat(day)))
        assert in_lake.num_rows == expected
        metadata = recorded[("transactions", day)]
        assert metadata["rows"] == expected
        assert metadata["run_days"] == 3
        assert metadata["records_quarantined"] == (2 if day == "2026-03-02" else 0)
        items = sum(len(r["items"]) for r in raw if r["transaction_id"] != "X")
        assert recorded[("transaction_items", day)]["rows"] == items
    # The bad lines are in quarantine with their reasons.
    quarantined = lake.objects().read(layout.quarantine_key(BAD_LOG)).decode().splitlines()
    assert len(quarantined) == 2 and all(json.loads(q)["reason"] for q in quarantined)

    # And every check has one result per day, each on that day's materialization.
    evaluations = result.get_asset_check_evaluations()
    per_check: dict[tuple[str, str], list[str]] = {}
    for e in evaluations:
        per_check.setdefault((e.asset_key.to_user_string(), e.check_name), []).append(e.partition)
        assert e.passed, (e.check_name, e.partition, e.metadata)
        assert e.target_materialization_data is not None
    assert len(per_check) == 7 and all(sorted(p) == DAYS for p in per_check.values())
    reconcile = {e.partition: e.metadata for e in evaluations
                 if e.check_name == "raw_records_reconcile"}  # fmt: skip
    assert reconcile["2026-03-02"]["quarantined_records"].value == 2
    assert reconcile["2026-03-02"]["raw_records"].value == len(_raw(lake, "2026-03-02")) + 1


def test_a_range_with_a_day_without_raw_logs_fails_naming_its_prefix_and_lands_nothing(lake):
    # Given raw logs for the first and last day only.
    for day in (DAYS[0], DAYS[-1]):
        log = ndjson(record(f"T-{day}", transaction_datetime=f"{day}T09:00:00Z"))
        lake.objects().write(f"raw/history/dt={day}/till-1.ndjson", log)

    result = _load(lake, [history_backfill], raise_on_error=False)

    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert f"raw/history/dt={DAYS[1]}/" in failure.step_failure_data.error.message
    assert table_rows("transactions").num_rows == 0  # no partial load


def test_days_are_landed_in_commits_bounded_in_transactions(lake, monkeypatch):
    for day in DAYS:
        for till in (1, 2):
            rows = [record(f"T-{day}-{till}-{n}", transaction_datetime=f"{day}T09:00:00Z")
                    for n in range(2)]  # fmt: skip
            lake.objects().write(f"raw/history/dt={day}/till-{till}.ndjson", ndjson(*rows))
    monkeypatch.setattr(backfill, "COMMIT_TRANSACTIONS", 5)  # two days reach it
    sources = backfill.day_sources(lake.objects(), [date.fromisoformat(d) for d in DAYS])

    landed = list(backfill.backfill_days(lake.objects(), lake.glue_database, sources))

    assert [(d.sources, d.rows["transactions"]) for d in landed] == [(2, 4), (2, 4), (2, 4)]
    transactions = lake.tables().current("transactions")
    assert len(transactions.metadata.snapshots) == 2  # days 1+2, then day 3
    # Each log was written as files of its own as soon as it was converted, so no more than
    # a log's rows were ever held: a file of each table per log, holding only that log's rows.
    for name in ("transactions", "transaction_items"):
        table = lake.tables().current(name)
        paths = table.inspect.files()["file_path"].to_pylist()
        held = [pq.read_table(table.io.new_input(p).open(), columns=["source_key"]) for p in paths]
        assert sorted(pc.unique(h["source_key"]).to_pylist() for h in held) == [
            [f"raw/history/dt={day}/till-{till}.ndjson"] for day in DAYS for till in (1, 2)
        ], name


def test_reingesting_a_day_from_its_raw_logs_is_an_idempotent_job(lake):
    day = DAYS[1]
    lake.objects().write(f"raw/history/dt={day}/till-1.ndjson",
                         ndjson(*[record(f"R-{n}", transaction_datetime=f"{day}T09:00:00Z")
                                  for n in range(4)]))  # fmt: skip
    defs = dg.Definitions(
        assets=[history_backfill, fact_table_day_checks],
        jobs=[reingest_history_days],
        resources={"lake": lake},
    )
    job = defs.resolve_job_def("reingest_history_days")

    first = job.execute_in_process(partition_key=day)
    before = table_rows("transactions").sort_by("transaction_id")
    second = job.execute_in_process(partition_key=day)
    after = table_rows("transactions").sort_by("transaction_id")

    assert first.success and second.success
    assert after.num_rows == 4
    assert after["transaction_id"].to_pylist() == before["transaction_id"].to_pylist()
    assert pc.min(after["ingested_at"]).as_py() > pc.max(before["ingested_at"]).as_py()
    checks = second.get_asset_check_evaluations()
    assert len(checks) == 7 and all(c.partition == day for c in checks)


@pytest.mark.parametrize("value", ["2026-13-01", "soon"])
def test_a_bad_history_start_is_a_clear_error(value):
    from supermarket_dagster.partitions import history_start

    with pytest.raises(ValueError, match=f"HISTORY_START='{value}': expected a day"):
        history_start({"HISTORY_START": value})


def test_a_range_of_rollups_is_one_commit_with_each_days_own_sums(lake):
    from supermarket_dagster.defs.sales.assets import sku_daily_sales

    for baskets, day in enumerate(DAYS, start=1):  # day n holds n baskets
        rows = [record(f"T-{day}-{n}", transaction_datetime=f"{day}T09:00:00Z")
                for n in range(baskets)]  # fmt: skip
        lake.objects().write(f"raw/history/dt={day}/till-1.ndjson", ndjson(*rows))
    assert _load(lake, [history_backfill]).success

    result = dg.materialize([sku_daily_sales], resources={"lake": lake},
                            tags=_range_tags(DAYS[0], DAYS[-1]))  # fmt: skip

    assert result.success
    rolled = table_rows("sku_daily_sales")
    for n, day in enumerate(DAYS, start=1):
        on_day = rolled.filter(pc.equal(rolled["dt"], date.fromisoformat(day)))
        # each of the day's n baskets holds GOOD's two lines: 2 units of one SKU, 1 of another
        assert sorted(zip(on_day["sku_id"].to_pylist(), on_day["units"].to_pylist(),
                          strict=True)) == [("SKU00001", 2 * n), ("SKU00002", n)]  # fmt: skip
    assert len(lake.tables().current("sku_daily_sales").metadata.snapshots) == 1
    metadata = {m.partition: m.metadata["lines"].value
                for m in result.asset_materializations_for_node("sku_daily_sales")}  # fmt: skip
    assert metadata == {day: 2 * n for n, day in enumerate(DAYS, start=1)}


def test_a_history_run_rolls_its_days_up_before_it_checks_them(lake):
    """`up` calls the history loaded when the rollup has landed, while the checks still run."""
    from supermarket_dagster.defs.sales.assets import sku_daily_sales

    reference = {"ops": {"skus": {"config": {"skus": CATALOGUE["skus"]}}}}
    assert dg.materialize([supermarkets, skus], resources={"lake": lake},
                          run_config=reference).success  # fmt: skip

    # The checks' step key sorts before the rollup's, so without the priority it ran first.
    result = _load(lake, [raw_history_logs, history_backfill, fact_table_day_checks,
                          sku_daily_sales])  # fmt: skip

    assert result.success
    started = [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]
    assert started == ["raw_history_logs", "history_backfill", "sku_daily_sales",
                       "fact_table_day_checks"]  # fmt: skip
    assert len(result.get_asset_check_evaluations()) == 7 * len(DAYS)


def test_a_refused_commit_is_landed_again_without_doubling_rows(lake, monkeypatch):
    from pyiceberg.exceptions import CommitFailedException

    day = DAYS[0]
    rows = [record(f"C-{n}", transaction_datetime=f"{day}T09:00:00Z") for n in range(3)]
    lake.objects().write(f"raw/history/dt={day}/till-1.ndjson", ndjson(*rows))
    real_land, calls = backfill.land_staged, []

    def refused_once(batch, database):
        calls.append(len(batch))
        if len(calls) == 1:  # as Glue refuses a commit on a stale version
            real_land(batch, database)  # ... after another writer committed the same sources
            raise CommitFailedException("stale version")
        return real_land(batch, database)

    monkeypatch.setattr(backfill, "land_staged", refused_once)
    monkeypatch.setattr(backfill.time, "sleep", lambda seconds: None)
    sources = backfill.day_sources(lake.objects(), [date.fromisoformat(day)])

    (landed,) = backfill.backfill_days(lake.objects(), lake.glue_database, sources)

    assert calls == [1, 1] and landed.rows["transactions"] == 3
    assert sorted(table_rows("transactions")["transaction_id"].to_pylist()) == ["C-0", "C-1", "C-2"]
