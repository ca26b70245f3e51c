"""The proof that compaction neither lost nor duplicated a row, held against the lake itself."""

from datetime import date
from typing import Any

import dagster as dg

from supermarket_dagster.compaction import survey_day
from supermarket_dagster.defs.maintenance.assets import compacted_days
from supermarket_dagster.fingerprint import Fingerprint
from supermarket_dagster.resources import LakeResource


def _recorded(instance: dg.DagsterInstance, day: str) -> dict[str, Any] | None:
    """The fingerprints the day's latest compaction left behind."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=compacted_days.key, asset_partitions=[day]), limit=1
    ).records
    if not records:
        return None
    metadata = records[0].event_log_entry.asset_materialization.metadata
    return metadata["fingerprint_after"].value


@dg.asset_check(asset=compacted_days, blocking=True)
def compaction_kept_every_row(
    context: dg.AssetCheckExecutionContext, lake: LakeResource
) -> dg.AssetCheckResult:
    """Each compacted day holds exactly the rows its compaction recorded (count, sums, multiset
    of row keys), and no source has rows in more than one place."""
    run = context.op_execution_context
    days = (
        [run.partition_key]
        if run.has_partition_key
        else sorted(context.instance.get_materialized_partitions(compacted_days.key))
    )
    objects = lake.objects()
    problems = []
    for day in days:
        recorded = _recorded(context.instance, day)
        if recorded is None:
            problems.append(f"dt={day}: no compaction recorded")
            continue
        for survey in survey_day(objects, date.fromisoformat(day)):
            expected = Fingerprint.from_json(recorded[survey.table])
            if survey.rows != expected:
                problems.append(
                    f"dt={day} {survey.table}: the lake holds {survey.rows.to_json()}, "
                    f"compaction left {expected.to_json()}"
                )
            if survey.sources_in_several_places:
                problems.append(
                    f"dt={day} {survey.table}: {len(survey.sources_in_several_places)} source(s) "
                    f"in more than one object, e.g. {survey.sources_in_several_places[0]} "
                    "(a redelivery or backfill after compaction): compact the day again"
                )
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "days_checked": len(days),
            "problems": len(problems),
            "details": dg.MetadataValue.json(problems[:20]),
        },
    )
