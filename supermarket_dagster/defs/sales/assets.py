"""Sales rollups: per-day summaries of the lake's lines that the curated views read.

The store totals (`store_hourly_totals`, `store_sku_totals`) sum a day's rows ingested until a
few minutes ago; they run in the compaction job, after each compaction of the day (the open
day's, every 5 minutes while it fills; a closed day's, after midnight or a late file), so the
store views sum only the rows ingested since. A view uses them only while they still sum
exactly the rows ingested before their mark.

`sku_daily_sales` is recomputed whenever a closed day's transaction_items change (backfill or a
late file), for any day but today: the live feed changes today every few seconds, and the view
sums the open day from its lines anyway, so rolling it up would only spend a run per tick. The
top_skus view uses a day's rollup only while it still sums exactly the lines the day holds, so a
missing or stale rollup costs speed, never exactness.
"""

from datetime import UTC, date, datetime

import dagster as dg

from supermarket_dagster.partitions import day_partitions, days_backfill_policy
from supermarket_dagster.resources import LakeResource
from supermarket_queries import rollup, store_totals

# eager() alone only looks at the latest day; a late file or a backfill changes older days too.
# The latest day is today (end_offset=1): it is rolled up once it closes, from the updates it saw.
# A backfill's run checks its days after it has materialized them, and eager() counts a day as
# no longer in progress once materialized: the rollup would run beside those checks, two large
# runs at once (1.70 GiB for the stack in a 10M backfill). It waits for each day's checks; the
# local instance's one-backfill-run limit keeps it queued until the whole run has ended.
rollup_automation = (
    dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
    & ~dg.AutomationCondition.in_latest_time_window()
    & ~dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.any_checks_match(dg.AutomationCondition.run_in_progress())
    ).with_label("any dep's checks in progress")
).with_label("eager, for closed days, once their checks have run")


@dg.asset(
    name=rollup.SKU_DAILY_SALES,
    partitions_def=day_partitions,
    backfill_policy=days_backfill_policy,  # in the history backfill's runs, a range each
    deps=[dg.AssetKey(rollup.ITEMS)],
    group_name="sales",
    kinds={"iceberg"},
    automation_condition=rollup_automation,
    # In a history run, before the day checks (the executor runs the ready step of highest
    # priority first): the days are then loaded, rollup included, while the checks still run.
    op_tags={"dagster/priority": "1"},
)
def sku_daily_sales(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """Each day's units and revenue per SKU, summed from that day's transaction_items; a range
    of days (a backfill's run) in one commit."""
    days = [date.fromisoformat(key) for key in context.partition_keys]
    written = rollup.roll_up_iceberg_days(lake.tables(), days, datetime.now(UTC))
    for day, day_rollup in written.items():
        context.log.info(
            f"dt={day}: rolled up {day_rollup.lines:,} lines from {day_rollup.item_files} files"
        )
        context.add_asset_metadata(
            {"rows": day_rollup.rows, "lines": day_rollup.lines,
             "item_files": day_rollup.item_files, "key": day_rollup.key},
            partition_key=day.isoformat(),
        )  # fmt: skip
    lines = sum(r.lines for r in written.values())
    return dg.MaterializeResult(metadata={"run_days": len(days), "run_lines": lines})


def _roll_up(
    context: dg.AssetExecutionContext, lake: LakeResource, totals: store_totals.StoreTotals
) -> dg.MaterializeResult:
    """The day's store totals through a few minutes ago (store_totals.SETTLED)."""
    day = date.fromisoformat(context.partition_key)
    now = datetime.now(UTC)
    done = store_totals.roll_up_day(lake.tables(), totals, day, now - store_totals.SETTLED, now)
    context.log.info(
        f"dt={day}: {done.summed:,} {totals.source} rows ingested before "
        f"{done.summed_through:%H:%M:%S} summed into {done.rows:,} rows, "
        f"from {done.data_files} files"
    )
    return dg.MaterializeResult(
        metadata={
            "summed_through": done.summed_through.isoformat(),
            totals.count: done.summed,
            "rows": done.rows,
            "data_files": done.data_files,
            "snapshot_id": str(done.snapshot_id),
        }
    )


def _store_totals_asset(totals: store_totals.StoreTotals, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=totals.name,
        partitions_def=day_partitions,
        # After the day's compaction in the same run: it then reads a few large files.
        deps=[dg.AssetKey(totals.source), dg.AssetKey("compacted_days")],
        group_name="sales",
        kinds={"iceberg"},
        description=description,
    )
    def rolled_up(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        return _roll_up(context, lake, totals)

    return rolled_up


store_hourly_totals = _store_totals_asset(
    store_totals.HOURLY,
    "The day's baskets and revenue per store, UTC hour and payment method, summed from its "
    "transactions ingested until a few minutes ago.",
)
store_sku_totals = _store_totals_asset(
    store_totals.SKUS,
    "The day's units, revenue and lines per store and SKU, summed from its transaction_items "
    "ingested until a few minutes ago.",
)
