"""The proof that compaction neither lost nor duplicated a row, held against the lake itself:
the files a compaction's commit added hold exactly the rows it recorded it rewrote."""

from typing import Any

import dagster as dg

from supermarket_dagster import compaction
from supermarket_dagster.defs.maintenance.assets import compacted_days
from supermarket_dagster.fingerprint import Fingerprint, fingerprint
from supermarket_dagster.partitions import latest_materialization
from supermarket_dagster.resources import LakeResource


def _recorded(instance: dg.DagsterInstance, day: str) -> dict[str, Any] | None:
    record = latest_materialization(instance, compacted_days.key, day)
    if record is None:
        return None
    return dict(record.event_log_entry.asset_materialization.metadata)


@dg.asset_check(asset=compacted_days, blocking=True)
def compaction_kept_every_row(
    context: dg.AssetCheckExecutionContext, lake: LakeResource
) -> dg.AssetCheckResult:
    """Each table's compaction commit of the day added exactly the rows it read (count, sums,
    multiset of row keys)."""
    run = context.op_execution_context
    days = (
        [run.partition_key]
        if run.has_partition_key
        else sorted(context.instance.get_materialized_partitions(compacted_days.key))
    )
    problems, checked = [], 0
    for day in days:
        recorded = _recorded(context.instance, day) or {}
        fingerprints = recorded["fingerprints"].value if "fingerprints" in recorded else {}
        for table, expected in fingerprints.items():
            snapshot_id = recorded[f"{table}.snapshot_id"].value
            rows = compaction.added_rows(lake.tables().current(table), snapshot_id)
            if rows is None:
                continue  # expired since: a later compaction's check covers its files
            checked += 1
            found = fingerprint(table, rows)
            if found != Fingerprint.from_json(expected):
                problems.append(f"{table} dt={day}: added {found.to_json()}, read {expected}")
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"tables_checked": checked, "problems": dg.MetadataValue.json(problems)},
    )
