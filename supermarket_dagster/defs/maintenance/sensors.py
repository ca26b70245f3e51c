"""Late Lambda files for a closed day: compact that day again, so that they fold in.

A file the Lambda ingests long after its day (an SQS redelivery, a dead-letter redrive) lands
as a small file in a day no schedule compacts any more; this sensor requests its compaction.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from supermarket_dagster import audit_log
from supermarket_dagster.defs.maintenance.schedules import compaction_job
from supermarket_dagster.resources import LakeResource


@dg.sensor(job=compaction_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING)  # fmt: skip
def late_files_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
    """Requests compaction of a day older than yesterday when the Lambda has written into it."""
    keys, cursor = audit_log.new_audit_keys(
        lake.objects(), context.cursor, audit_log.MAX_RECORDS_PER_TICK
    )
    scheduled = {datetime.now(UTC).date() - timedelta(days=n) for n in (0, 1)}
    requests = {}
    for key, record in zip(keys, audit_log.read_records(lake.objects(), keys), strict=True):
        if not audit_log.from_live_feed(record):
            # History lands in whole days: a file per raw log (7 a day at 10M transactions a
            # month), which this sensor leaves as they are (see the README's backfill figures).
            continue
        for day in record.rows_per_day:
            if datetime.fromisoformat(day).date() not in scheduled:
                requests[day] = dg.RunRequest(run_key=f"fold-{key}", partition_key=day)
                context.log.info(f"{record.source_key} landed late in dt={day}")
    return dg.SensorResult(run_requests=list(requests.values()), cursor=cursor or None)
