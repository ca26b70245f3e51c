"""When maintenance runs: the open day every few minutes, the day just closed after midnight,
and housekeeping hourly."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from supermarket_dagster import compaction
from supermarket_dagster.defs.maintenance.assets import (
    COMPACTED_TABLES,
    compacted_days,
    lake_housekeeping,
)
from supermarket_dagster.partitions import latest_materialization
from supermarket_dagster.resources import LakeResource
from supermarket_queries import store_totals

# Every 5 minutes, 2 minutes after the live day checks' ticks (CHECK_CRON, */5): the two runs
# would otherwise start together and share the 2 cores and the memory beside the live path.
OPEN_DAY_CRON = "2-59/5 * * * *"

# The day's store totals are summed again after each compaction, from its few large files.
compaction_job = dg.define_asset_job(
    "compact_days",
    selection=dg.AssetSelection.assets(compacted_days)  # with its check
    | dg.AssetSelection.assets(*(totals.name for totals in store_totals.ROLLUPS)),
)
housekeeping_job = dg.define_asset_job(
    "housekeep_lake", selection=dg.AssetSelection.assets(lake_housekeeping)
)


@dg.schedule(job=compaction_job, cron_schedule=OPEN_DAY_CRON, execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING)  # fmt: skip
def open_day_compaction(
    context: dg.ScheduleEvaluationContext, lake: LakeResource
) -> dg.RunRequest | dg.SkipReason:
    """Compacts today (UTC), as it fills. Skipped while nothing has landed in it since its last
    compaction (the feed paused, a stack only backfilling history): a run is a process of ~200
    MiB and seconds of CPU, beside the live path and any backfill, for nothing."""
    day = context.scheduled_execution_time.date()
    landed = compaction.last_landed(lake.tables(), COMPACTED_TABLES, day)
    if landed is None:
        return dg.SkipReason(f"nothing has landed in dt={day} yet")
    compacted = _last_compacted(context.instance, day.isoformat())
    if compacted is not None and landed <= compacted:
        return dg.SkipReason(f"nothing has landed in dt={day} since its compaction at {compacted}")
    return dg.RunRequest(run_key=f"compact-{context.scheduled_execution_time:%Y%m%dT%H%M}",
                         partition_key=day.isoformat())  # fmt: skip


def _last_compacted(instance: dg.DagsterInstance, day: str) -> datetime | None:
    """When the day's last compaction was recorded (after its commits); None: never."""
    record = latest_materialization(instance, compacted_days.key, day)
    return datetime.fromtimestamp(record.timestamp, UTC) if record else None


@dg.schedule(job=compaction_job, cron_schedule="30 0 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING)  # fmt: skip
def nightly_compaction(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Compacts yesterday (UTC) once its last files are in; the run key asks once a day."""
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=f"compact-{day}", partition_key=day)


@dg.schedule(job=housekeeping_job, cron_schedule="17 * * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING)  # fmt: skip
def hourly_housekeeping(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Expires snapshots and removes orphaned files."""
    return dg.RunRequest(run_key=f"housekeeping-{context.scheduled_execution_time:%Y%m%dT%H}")
