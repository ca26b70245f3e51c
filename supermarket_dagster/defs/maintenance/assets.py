"""Lake maintenance: compaction of closed days (the work itself is in compaction.py)."""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg

from supermarket_dagster.compaction import (
    DEFAULT_GRACE,
    DEFAULT_TARGET_BYTES,
    DayCompaction,
    OpenDay,
    compact_day,
    require_closed,
)
from supermarket_dagster.partitions import day_partitions
from supermarket_dagster.resources import LakeResource


class CompactionConfig(dg.Config):
    target_bytes: int = DEFAULT_TARGET_BYTES
    # Past the day's end, long enough for the last files, S3 event retries and SQS redeliveries.
    grace_hours: float = DEFAULT_GRACE.total_seconds() / 3600


def compaction_metadata(compaction: DayCompaction) -> dict[str, Any]:
    """Materialization metadata; `fingerprint_after` is what the check holds the lake to."""
    metadata: dict[str, Any] = {}
    for name, value in compaction.metadata().items():
        metadata[name] = dg.MetadataValue.json(value) if isinstance(value, dict) else value
    return metadata


@dg.asset(
    partitions_def=day_partitions,
    group_name="maintenance",
    kinds={"s3", "parquet"},
    deps=["transactions", "transaction_items"],
    output_required=False,  # an open day is skipped: no materialization is recorded for it
)
def compacted_days(
    context: dg.AssetExecutionContext, config: CompactionConfig, lake: LakeResource
) -> Iterator[dg.MaterializeResult]:
    """A closed day's per-source Parquet objects merged into a few of about target_bytes each."""
    day = date.fromisoformat(context.partition_key)
    try:
        require_closed(day, timedelta(hours=config.grace_hours))
    except OpenDay as open_day:
        context.log.warning(str(open_day))
        return
    compaction = compact_day(lake.objects(), day, config.target_bytes)
    summary = "already compacted, nothing to do" if compaction.noop else compaction.metadata()
    context.log.info(f"dt={day}: {summary}")
    yield dg.MaterializeResult(metadata=compaction_metadata(compaction))
