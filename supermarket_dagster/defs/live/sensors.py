"""The live tables: the Lambda writes them, Dagster learns of it from the audit records (read
after the sensor's cursor, see audit_log)."""

from collections import defaultdict
from typing import Any

import dagster as dg

from lake_contract.audit import AuditRecord
from supermarket_dagster import audit_log
from supermarket_dagster.partitions import day_partitions
from supermarket_dagster.resources import LakeResource


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def audit_materializations(records: list[AuditRecord]) -> list[dg.AssetMaterialization]:
    """One materialization per (table, UTC day) the Lambda's records wrote rows into. The
    history backfill's records are left out: its run materialized those days itself, and a
    second, runless materialization would make the day's checks look out of date and look like
    new data to the automation that rolls the days up."""
    per_partition: dict[tuple[str, str], list[AuditRecord]] = defaultdict(list)
    for record in filter(audit_log.from_live_feed, records):
        for day, tables in record.rows_per_day.items():
            for table in tables:
                per_partition[(table, day)].append(record)
    valid_days = set(day_partitions.get_partition_keys())
    events = []
    for (table, day), touching in sorted(per_partition.items()):
        if day not in valid_days:
            continue  # a day outside the partitions (e.g. a clock far off): still in the lake
        lags = [r.lag_seconds for r in touching if r.lag_seconds is not None]
        metadata: dict[str, Any] = {
            "rows_written": sum(r.rows_per_day[day][table] for r in touching),
            "source_files": len(touching),
            "records_quarantined": sum(r.records_quarantined for r in touching),
            "last_source_key": touching[-1].source_key,
            "last_landed_at": touching[-1].finished_at.isoformat(),
        }
        if lags:
            metadata["ingest_lag_seconds"] = lags[-1]
            metadata["ingest_lag_p95_seconds"] = _p95(lags)
        events.append(dg.AssetMaterialization(asset_key=table, partition=day, metadata=metadata))
    return events


@dg.sensor(minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING)
def lake_audit_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
    """Reports what the Lambda wrote as materializations of the day partitions it touched (the
    backfill's records are passed over: its runs report their own)."""
    keys, cursor = audit_log.new_audit_keys(
        lake.objects(), context.cursor, audit_log.MAX_RECORDS_PER_TICK
    )
    if not keys:
        return dg.SensorResult(cursor=cursor or None)
    records = audit_log.read_records(lake.objects(), keys)
    context.log.info(f"{len(records)} new audit records, up to {keys[-1]}")
    return dg.SensorResult(asset_events=audit_materializations(records), cursor=cursor)
