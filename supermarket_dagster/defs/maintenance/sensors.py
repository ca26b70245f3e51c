"""Late Lambda files for a day already compacted: compact that day again, so that they fold in.

A file the Lambda ingests after its day was compacted (an S3 event retry, an SQS redelivery,
a dead-letter redrive) writes its per-source object beside the compacted ones, and readers see
its rows twice until the day is compacted again. This sensor requests that compaction.
"""

from datetime import datetime

import dagster as dg

from lake_contract import layout
from supermarket_dagster import audit_log
from supermarket_dagster.defs.maintenance.assets import compacted_days
from supermarket_dagster.defs.maintenance.schedules import compaction_job
from supermarket_dagster.resources import LakeResource


def _compaction_listed_at(instance: dg.DagsterInstance, day: str) -> datetime | None:
    """When the day's latest compaction listed its objects; None if it was never compacted."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=compacted_days.key, asset_partitions=[day]), limit=1
    ).records
    if not records:
        return None
    listed_at = records[0].event_log_entry.asset_materialization.metadata["listed_at"]
    return datetime.fromisoformat(listed_at.value)


@dg.sensor(job=compaction_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING)  # fmt: skip
def late_files_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
    """Requests compaction of a compacted day again when the Lambda has written into it since."""
    keys, cursor = audit_log.new_audit_keys(
        lake.objects(), context.cursor, audit_log.MAX_RECORDS_PER_TICK
    )
    requests = {}
    for key, record in zip(keys, audit_log.read_records(lake.objects(), keys), strict=True):
        if not record.source_key.startswith(layout.RAW_INCOMING):
            continue  # the history backfill compacts a compacted day again itself
        landed = record.finished_at
        for day in record.rows_per_day:
            listed_at = _compaction_listed_at(context.instance, day)
            if listed_at is not None and landed > listed_at:
                requests[day] = dg.RunRequest(run_key=f"fold-{key}", partition_key=day)
                context.log.info(f"{record.source_key} landed in compacted dt={day}")
    return dg.SensorResult(run_requests=list(requests.values()), cursor=cursor or None)
