"""Lake maintenance: each day's small Iceberg files compacted (the open day too), and the
tables' snapshots expired and orphaned files removed (the work itself is in compaction.py)."""

from datetime import date

import dagster as dg

from lake_contract import tables
from supermarket_dagster import compaction, dedupe, file_tallies
from supermarket_dagster.partitions import day_partitions
from supermarket_dagster.resources import LakeResource

COMPACTED_TABLES = ("transactions", "transaction_items")  # the rollup is one file a day already


class CompactionConfig(dg.Config):
    small_file_bytes: int = compaction.SMALL_FILE_BYTES
    small_file_rows: int = compaction.SMALL_FILE_ROWS
    min_files: int = compaction.MIN_FILES


@dg.asset(
    partitions_def=day_partitions,
    group_name="maintenance",
    kinds={"iceberg"},
    deps=list(COMPACTED_TABLES),
)
def compacted_days(
    context: dg.AssetExecutionContext, config: CompactionConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """One day's small data files of the fact tables rewritten as few large ones, one replace
    commit per table; the open day too, so its queries stay fast while it fills. First, an id
    landed from two sources keeps its first copy only: the later one is quarantined (dedupe.py)."""
    day = date.fromisoformat(context.partition_key)
    deduped = dedupe.dedupe_day(lake.tables(), lake.objects(), day)
    if deduped.copies_removed:
        context.log.warning(
            f"dt={day}: {deduped.ids} ids landed twice; {deduped.copies_removed} later copies "
            f"quarantined from {len(deduped.sources)} sources"
        )
    done = {
        table: compaction.compact_day(
            lake.tables(),
            table,
            day,
            config.small_file_bytes,
            config.min_files,
            config.small_file_rows,
        )
        for table in COMPACTED_TABLES
    }
    for table, result in done.items():
        summary = "nothing to do" if result.noop else f"{result.files_rewritten} files -> "
        summary += "" if result.noop else f"{result.files_written} ({result.rows:,} rows)"
        context.log.info(f"{table} dt={day}: {summary} of {result.files_before} files")
    metadata = {
        f"{table}.{name}": value
        for table, result in done.items()
        for name, value in result.metadata().items()
        if name not in ("table", "dt", "fingerprint")
    }
    fingerprints = {t: r.fingerprint.to_json() for t, r in done.items() if not r.noop}
    return dg.MaterializeResult(
        metadata={
            **metadata,
            **deduped.metadata(),
            "fingerprints": dg.MetadataValue.json(fingerprints),
        }
    )


@dg.asset(group_name="maintenance", kinds={"iceberg"}, deps=list(tables.ICEBERG_TABLES))
def lake_housekeeping(
    context: dg.AssetExecutionContext, lake: LakeResource
) -> dg.MaterializeResult:
    """Metadata kept bounded: old snapshots expired, files no kept snapshot reaches removed, the
    day checks' file tallies of days no longer checked again removed."""
    metadata = {}
    for table in tables.ICEBERG_TABLES:
        expired = compaction.expire_snapshots(lake.tables(), table)
        swept = compaction.remove_orphans(lake.tables(), lake.objects(), table)
        context.log.info(f"{table}: {expired} snapshots expired, {swept.removed} orphans removed")
        metadata |= {
            f"{table}.snapshots_expired": expired,
            f"{table}.objects": swept.objects,
            f"{table}.orphans_removed": swept.removed,
            f"{table}.orphan_bytes_removed": swept.bytes_removed,
        }
    removed = file_tallies.remove_before(lake.objects(), file_tallies.first_kept_day())
    context.log.info(f"{removed} file tallies of older days removed")
    metadata["file_tallies_removed"] = removed
    return dg.MaterializeResult(metadata=metadata)
