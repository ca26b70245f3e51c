"""Historical logs and the Glue-equivalent backfill that turns one day of them into the tables.

The backfill converts the day's raw logs with the Lambda's own transform and lands them with its
committer: one commit per table for the day, then the audit records. Re-running a day replaces
exactly that day's sources (the committer finds them already in the table and deletes their
old rows in the same commit), whether compacted since or not; nothing else changes.
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import dagster as dg

from lake_contract import layout
from lambda_ingest.events import SourceObject
from lambda_ingest.handler import convert, land
from simulator.defaults import (
    DEFAULT_SEED,
    DEFAULT_SKUS,
    DEFAULT_STORES,
    DEFAULT_TRANSACTIONS_PER_DAY,
)
from simulator.history import HistoryOptions, history_key, plan_files, render_file
from simulator.reference import build_reference
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
    """The Glue-equivalent job: one day's raw logs -> transactions and transaction_items, in
    one Iceberg commit per table, through the Lambda's own transform and committer."""
    day = date.fromisoformat(context.partition_key)
    prefix = layout.day_prefix(layout.RAW_HISTORY, day)
    sources = lake.objects().keys(prefix)
    if not sources:
        raise dg.Failure(f"no raw logs under s3://{lake.bucket}/{prefix}: nothing to backfill")
    with ThreadPoolExecutor(max_workers=2) as pool:  # each conversion uses both cores too
        converted = pool.map(lambda key: convert(_history_source(lake, key), lake.bucket), sources)
        batch = [c for c in converted if c is not None]
    audits = land(batch, lake.glue_database)
    totals = {
        t: sum(a.rows_written[t] for a in audits) for t in ("transactions", "transaction_items")
    }
    read = sum(a.records_read for a in audits)
    quarantined = sum(a.records_quarantined for a in audits)
    context.log.info(f"dt={day}: {len(audits)} logs, {read:,} records, {quarantined:,} quarantined")
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


def _history_source(lake: LakeResource, key: str) -> SourceObject:
    return SourceObject(bucket=lake.bucket, key=key, size=None, event_time=None)
