"""Historical logs and the Glue-equivalent backfill that turns one day of them into the tables.

The backfill runs the Lambda's own `ingest` on each raw log: same transform, same keys, same
audit records. Re-running a day replaces exactly that day's files and nothing else; on a day
already compacted, it compacts the day again, so the fresh rows replace their compacted copies.
"""

from datetime import date

import dagster as dg

from lake_contract import layout
from lambda_ingest.events import SourceObject
from lambda_ingest.handler import ingest
from simulator.defaults import (
    DEFAULT_SEED,
    DEFAULT_SKUS,
    DEFAULT_STORES,
    DEFAULT_TRANSACTIONS_PER_DAY,
)
from simulator.history import HistoryOptions, history_key, plan_files, render_file
from simulator.reference import build_reference
from supermarket_dagster.compaction import compact_day, day_is_compacted
from supermarket_dagster.defs.maintenance.assets import compaction_metadata
from supermarket_dagster.partitions import day_partitions
from supermarket_dagster.policies import live_freshness_policy
from supermarket_dagster.resources import LakeResource


class HistoryConfig(dg.Config):
    transactions_per_day: int = DEFAULT_TRANSACTIONS_PER_DAY
    seed: int = DEFAULT_SEED
    stores: int = DEFAULT_STORES
    skus: int = DEFAULT_SKUS


@dg.asset(partitions_def=day_partitions, group_name="history", kinds={"s3", "json"})
def raw_history_logs(
    context: dg.AssetExecutionContext, config: HistoryConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """One day of historical NDJSON logs under raw/history/dt=YYYY-MM-DD/."""
    day = date.fromisoformat(context.partition_key)
    options = HistoryOptions(
        location=f"s3://{lake.bucket}",
        transactions=config.transactions_per_day,
        start=day,
        end=day,
        seed=config.seed,
        stores=config.stores,
        skus=config.skus,
    )
    reference = build_reference(config.stores, config.skus, config.seed)
    keys = []
    for file in plan_files(options):
        key = history_key(options, file)
        lake.objects().write(key, render_file(options, reference, file))
        keys.append(key)
    return dg.MaterializeResult(
        metadata={"files": len(keys), "transactions": config.transactions_per_day}
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            name,
            deps=[raw_history_logs],
            group_name="history",
            kinds={"parquet"},
            freshness_policy=live_freshness_policy,  # the Lambda writes them live too
        )
        for name in ("transactions", "transaction_items")
    ],
    partitions_def=day_partitions,
)
def history_backfill(context: dg.AssetExecutionContext, lake: LakeResource):  # noqa: ANN201
    """The Glue-equivalent job: one day's raw logs -> transactions and transaction_items."""
    day = date.fromisoformat(context.partition_key)
    sources = lake.objects().keys(layout.day_prefix(layout.RAW_HISTORY, day))
    totals = {"transactions": 0, "transaction_items": 0}
    read = quarantined = 0
    for key in sources:
        audit = ingest(SourceObject(bucket=lake.bucket, key=key, size=None, event_time=None),
                       lake.bucket)  # fmt: skip
        if audit is None:
            continue
        read += audit.records_read
        quarantined += audit.records_quarantined
        for table in totals:
            totals[table] += audit.rows_written[table]
        context.log.info(f"converted {key}: {audit.rows_written}")
    objects = lake.objects()
    if day_is_compacted(objects, day):
        # The per-source objects just written repeat rows of the compacted ones: fold them in.
        compaction = compact_day(objects, day)
        context.log_event(
            dg.AssetMaterialization(
                "compacted_days", partition=context.partition_key,
                metadata=compaction_metadata(compaction),
            )
        )  # fmt: skip
    for table, rows in totals.items():
        yield dg.MaterializeResult(
            asset_key=table,
            metadata={
                "rows": rows,
                "source_files": len(sources),
                "records_read": read,
                "records_quarantined": quarantined,
            },
        )
