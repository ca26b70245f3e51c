"""The live tables: the Lambda writes them, Dagster learns of it from the audit records.

Audit keys sort by finish time, so the cursor is the newest key seen, never a wall-clock time.
Concurrent Lambdas can land a record a moment after a later-stamped one has been listed, so
each tick re-lists a short overlap window and skips the keys it has already reported (kept in
the cursor): no record missed, none counted twice, and no full rescan.
"""

import json
from collections import defaultdict
from typing import Any

import dagster as dg

from lake_contract import layout
from lake_contract.audit import AuditRecord
from supermarket_dagster.defs.history.partitions import history_partitions
from supermarket_dagster.resources import LakeResource

MAX_RECORDS_PER_TICK = 1_000  # bounds a tick after a long pause; the next tick goes on
OVERLAP_MS = 10_000  # how far out of order audit records may land and still be seen


def new_audit_keys(lake: LakeResource, cursor: str | None, limit: int) -> tuple[list[str], str]:
    """Audit keys not reported yet, in key order, and the cursor to store after them."""
    state = json.loads(cursor) if cursor else {"last": "", "recent": []}
    recent = set(state["recent"])
    after = ""
    if state["last"]:
        after = layout.audit_listing_start(layout.audit_time_ms(state["last"]) - OVERLAP_MS)
    listed = lake.objects().keys(layout.AUDIT, after=after, limit=limit + len(recent))
    new = [key for key in listed if key not in recent][:limit]
    if not new:
        return [], cursor or ""
    newest = max([state["last"], *new])
    horizon = layout.audit_time_ms(newest) - OVERLAP_MS
    keep = sorted(k for k in recent | set(new) if layout.audit_time_ms(k) >= horizon)
    return new, json.dumps({"last": newest, "recent": keep})


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def audit_materializations(records: list[AuditRecord]) -> list[dg.AssetMaterialization]:
    """One materialization per (table, UTC day) the records wrote rows into."""
    per_partition: dict[tuple[str, str], list[AuditRecord]] = defaultdict(list)
    for record in records:
        for day, tables in record.rows_per_day.items():
            for table in tables:
                per_partition[(table, day)].append(record)
    valid_days = set(history_partitions.get_partition_keys())
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
    """Reports what the Lambda wrote as materializations of the day partitions it touched."""
    keys, cursor = new_audit_keys(lake, context.cursor, MAX_RECORDS_PER_TICK)
    if not keys:
        return dg.SensorResult(cursor=cursor or None)
    records = [AuditRecord.from_json(body) for body in lake.objects().read_many(keys)]
    context.log.info(f"{len(records)} new audit records, up to {keys[-1]}")
    return dg.SensorResult(asset_events=audit_materializations(records), cursor=cursor)
