"""Every night, compact the day that has just closed."""

from datetime import timedelta

import dagster as dg

from supermarket_dagster.compaction import DEFAULT_GRACE
from supermarket_dagster.defs.maintenance.assets import compacted_days

compaction_job = dg.define_asset_job(
    "compact_closed_days",
    selection=dg.AssetSelection.assets(compacted_days),  # with its check
)


# Half an hour after the default grace has run out for the previous UTC day.
@dg.schedule(
    job=compaction_job,
    cron_schedule=f"30 {int(DEFAULT_GRACE.total_seconds() // 3600)} * * *",
    execution_timezone="UTC",
)
def nightly_compaction(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Compacts yesterday (UTC); the run key makes a day's request once only."""
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=f"compact-{day}", partition_key=day)
