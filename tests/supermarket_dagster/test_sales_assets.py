import json
import warnings
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import dagster as dg
from pyiceberg.expressions import EqualTo

from lake_contract import layout, schema, tables
from supermarket_dagster.defs.history.assets import history_backfill, raw_history_logs
from supermarket_dagster.defs.sales.assets import sku_daily_sales
from tests.moto_server import table_rows

DAY, OTHER_DAY = "2026-03-02", "2026-03-03"


def _history(lake, day, transactions):
    config = {"ops": {"raw_history_logs": {"config": {"transactions_per_day": transactions,
                                                      "skus": 300, "seed": 7}}}}  # fmt: skip
    assert dg.materialize([raw_history_logs], resources={"lake": lake}, partition_key=day,
                          run_config=config).success  # fmt: skip
    assert dg.materialize([history_backfill], resources={"lake": lake}, partition_key=day).success


def _expected(lake, day):
    """Per SKU: units, revenue and lines, summed from the day's raw JSON logs."""
    units, revenue, lines = Counter(), defaultdict(Decimal), Counter()
    for key in lake.objects().keys(layout.day_prefix(layout.RAW_HISTORY, date.fromisoformat(day))):
        for line in lake.objects().read(key).splitlines():
            for item in json.loads(line, parse_float=Decimal)["items"]:
                units[item["sku_id"]] += item["quantity"]
                revenue[item["sku_id"]] += item["quantity"] * item["unit_price"]
                lines[item["sku_id"]] += 1
    return {sku: (units[sku], revenue[sku], lines[sku]) for sku in units}


def test_a_days_rollup_equals_the_sums_of_its_logged_lines(lake):
    _history(lake, DAY, 900)
    _history(lake, OTHER_DAY, 500)  # must not leak into DAY's rollup
    before = datetime.now(UTC)

    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        result = dg.materialize([sku_daily_sales], resources={"lake": lake}, partition_key=DAY)

    assert result.success
    # The day's first rollup replaces nothing; that is not worth a warning in the run's log.
    assert not [w for w in warned if "did not match any records" in str(w.message)]
    rolled = _rolled(DAY)
    assert rolled.schema.names == tables.arrow_schema("sku_daily_sales").names
    assert rolled.schema.field("revenue").type == schema.MONEY_ROLLUP
    got = {r["sku_id"]: (r["units"], r["revenue"], r["lines"]) for r in rolled.to_pylist()}
    expected = _expected(lake, DAY)
    assert got == expected
    for row in rolled.to_pylist():  # RANK() within the day: 1 + the SKUs strictly ahead
        assert row["revenue_rank"] == 1 + sum(r > expected[row["sku_id"]][1]
                                              for _, r, _ in expected.values())  # fmt: skip
        assert row["units_rank"] == 1 + sum(u > expected[row["sku_id"]][0]
                                            for u, _, _ in expected.values())  # fmt: skip
    assert all(r >= before.replace(microsecond=0) for r in rolled["rolled_up_at"].to_pylist())
    metadata = result.asset_materializations_for_node("sku_daily_sales")[0].metadata
    assert metadata["rows"].value == len(got)
    assert metadata["lines"].value == sum(n for _, _, n in got.values())


def test_rerunning_a_days_rollup_replaces_it(lake):
    _history(lake, DAY, 300)
    dg.materialize([sku_daily_sales], resources={"lake": lake}, partition_key=DAY)
    first = _rolled(DAY)

    dg.materialize([sku_daily_sales], resources={"lake": lake}, partition_key=DAY)

    rolled = _rolled(DAY)
    assert rolled.num_rows == first.num_rows  # replaced, not added
    got = {r["sku_id"]: (r["units"], r["revenue"], r["lines"]) for r in rolled.to_pylist()}
    assert got == _expected(lake, DAY)
    assert min(rolled["rolled_up_at"].to_pylist()) > max(first["rolled_up_at"].to_pylist())


def _rolled(day):
    return table_rows("sku_daily_sales", row_filter=EqualTo("dt", day))


def test_a_day_with_no_lines_rolls_up_to_no_rows(lake):
    result = dg.materialize([sku_daily_sales], resources={"lake": lake}, partition_key=DAY)

    assert result.success
    assert _rolled(DAY).num_rows == 0


def test_new_lines_on_a_closed_day_request_its_rollup_once_and_today_waits_for_midnight():
    from supermarket_dagster.definitions import defs

    instance = dg.DagsterInstance.ephemeral()
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    today = noon.date().isoformat()
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=noon)
    assert first.get_num_requested(dg.AssetKey("sku_daily_sales")) == 0  # no lines anywhere yet

    for day in ("2025-06-01", today):  # a late file on an old day, and the live feed today
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key="transaction_items", partition=day)
        )
    second = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=first.cursor, evaluation_time=noon
    )
    third = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=second.cursor, evaluation_time=noon
    )
    after_midnight = dg.evaluate_automation_conditions(
        defs=defs,
        instance=instance,
        cursor=third.cursor,
        evaluation_time=noon + timedelta(hours=12, minutes=1),
    )

    assert second.get_requested_partitions(dg.AssetKey("sku_daily_sales")) == {"2025-06-01"}
    assert third.get_num_requested(dg.AssetKey("sku_daily_sales")) == 0
    # Once today has closed, the lines it received are rolled up, once.
    assert after_midnight.get_requested_partitions(dg.AssetKey("sku_daily_sales")) == {today}


def test_a_backfills_days_are_rolled_up_once_its_day_checks_have_run_not_beside_them(tmp_path):
    """A range run materializes its days, then checks them in a later step: the rollup's
    condition must not fire in between (two large runs at once). The check step here really is
    running, held on an event, while the condition is evaluated from another thread."""
    import threading

    from supermarket_dagster.defs.sales.assets import rollup_automation

    days = dg.DailyPartitionsDefinition(start_date="2026-11-01", end_offset=1)
    checking, release = threading.Event(), threading.Event()

    @dg.asset(name="transaction_items", partitions_def=days,
              backfill_policy=dg.BackfillPolicy.single_run())  # fmt: skip
    def items(context: dg.AssetExecutionContext) -> None:
        context.log.info(f"landed {context.partition_keys}")

    spec = dg.AssetCheckSpec("sku_ids_known", asset="transaction_items", partitions_def=days)

    @dg.multi_asset_check(specs=[spec], can_subset=True)
    def day_checks(context: dg.AssetCheckExecutionContext):
        checking.set()
        assert release.wait(60)
        for day in context.partition_keys:
            yield dg.AssetCheckEvaluation(asset_key=items.key, check_name=spec.name, passed=True,
                                          partition=day)  # fmt: skip

    @dg.asset(name="sku_daily_sales", partitions_def=days, deps=[items],
              automation_condition=rollup_automation,
              backfill_policy=dg.BackfillPolicy.single_run())  # fmt: skip
    def rollup() -> None:
        pass

    defs = dg.Definitions(assets=[items, rollup], asset_checks=[day_checks])
    first_day, last_day = "2026-11-02", "2026-11-04"
    range_tags = {"dagster/asset_partition_range_start": first_day,
                  "dagster/asset_partition_range_end": last_day}  # fmt: skip
    # No compute logs: captured from a run in a thread, they leave `tail -F` processes behind.
    no_logs = {"compute_logs": {"module": "dagster._core.storage.noop_compute_log_manager",
                                "class": "NoOpComputeLogManager"}}  # fmt: skip
    with dg.DagsterInstance.local_temp(str(tmp_path), overrides=no_logs) as instance:
        before = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        result = {}
        run = threading.Thread(target=lambda: result.setdefault("run", dg.materialize(
            [items, day_checks], instance=instance, tags=range_tags)))  # fmt: skip
        run.start()
        try:
            assert checking.wait(60)
            during = dg.evaluate_automation_conditions(
                defs=defs, instance=instance, cursor=before.cursor
            )
        finally:
            release.set()
            run.join(120)
        assert result["run"].success
        after = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=during.cursor
        )

    assert before.get_num_requested(rollup.key) == 0
    # Materialized, not yet checked: the days wait.
    assert during.get_num_requested(rollup.key) == 0
    assert after.get_requested_partitions(rollup.key) == {
        "2026-11-02", "2026-11-03", "2026-11-04"
    }  # fmt: skip
