"""Historical logs and the Glue-equivalent backfill that turns a range of days of them into the
tables.

Both are backfilled a range of days per run (days_backfill_policy): a month of the demo is one
run, whose days are converted on both cores and landed in few commits (supermarket_dagster.
backfill). The backfill converts with the Lambda's own transform and lands with its committer,
then writes the audit records. Re-running a day replaces exactly that day's sources (the
committer finds them already in the table and deletes their old rows in the same commit),
whether compacted since or not; nothing else changes. The reingest_history_days job is that
re-run, named: a day re-read from its raw logs.
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import dagster as dg

from simulator.defaults import (
    DEFAULT_SEED,
    DEFAULT_SKUS,
    DEFAULT_STORES,
    DEFAULT_TRANSACTIONS_PER_DAY,
)
from simulator.history import HistoryOptions, history_key, plan_files, render_file
from simulator.reference import build_reference
from supermarket_dagster import backfill
from supermarket_dagster.partitions import day_partitions, days_backfill_policy
from supermarket_dagster.policies import live_freshness_policy
from supermarket_dagster.resources import LakeResource


class HistoryConfig(dg.Config):
    transactions_per_day: int = DEFAULT_TRANSACTIONS_PER_DAY
    seed: int = DEFAULT_SEED
    stores: int = DEFAULT_STORES
    skus: int = DEFAULT_SKUS


@dg.asset(
    partitions_def=day_partitions,
    backfill_policy=days_backfill_policy,
    group_name="history",
    kinds={"s3", "json"},
)
def raw_history_logs(
    context: dg.AssetExecutionContext, config: HistoryConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """Days of historical NDJSON logs under raw/history/dt=YYYY-MM-DD/, one run per range."""
    reference = build_reference(config.stores, config.skus, config.seed)
    objects = lake.objects()

    def write_day(key: str) -> int:
        day = date.fromisoformat(key)
        options = HistoryOptions(
            location=f"s3://{lake.bucket}",
            transactions=config.transactions_per_day,
            start=day,
            end=day,
            seed=config.seed,
            stores=config.stores,
            skus=config.skus,
        )
        files = plan_files(options)
        for file in files:
            objects.write(history_key(options, file), render_file(options, reference, file))
        return len(files)

    with ThreadPoolExecutor(max_workers=4) as pool:  # the PUTs wait on moto or S3, not on CPU
        keys = context.partition_keys
        for key, files in zip(keys, pool.map(write_day, keys), strict=True):
            context.add_asset_metadata({"files": files}, partition_key=key)
    return dg.MaterializeResult(metadata={"transactions": config.transactions_per_day})


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
    backfill_policy=days_backfill_policy,
)
def history_backfill(context: dg.AssetExecutionContext, lake: LakeResource):  # noqa: ANN201
    """The Glue-equivalent job: a range of days' raw logs -> transactions and
    transaction_items, through the Lambda's own transform and committer, in few commits."""
    days = [date.fromisoformat(key) for key in context.partition_keys]
    objects = lake.objects()
    try:
        sources = backfill.day_sources(objects, days)
    except backfill.MissingRawLogs as exc:
        raise dg.Failure(str(exc)) from None
    landed = []
    for day in backfill.backfill_days(objects, lake.glue_database, sources):
        landed.append(day)
        context.log.info(
            f"dt={day.day}: {day.sources} logs, {day.records_read:,} records, "
            f"{day.rows['transactions']:,} transactions, {day.records_quarantined:,} quarantined"
        )
        for table in backfill.FACT_TABLES:
            context.add_asset_metadata(
                {
                    "rows": day.rows[table],
                    "source_files": day.sources,
                    "records_read": day.records_read,
                    "records_quarantined": day.records_quarantined,
                },
                asset_key=table,
                partition_key=day.day.isoformat(),
            )
    for table in backfill.FACT_TABLES:
        yield dg.MaterializeResult(
            asset_key=table,
            metadata={
                "run_days": len(landed),
                "run_rows": sum(d.rows[table] for d in landed),
                "run_records_quarantined": sum(d.records_quarantined for d in landed),
            },
        )


reingest_history_days = dg.define_asset_job(
    "reingest_history_days",
    selection=dg.AssetSelection.assets(history_backfill),
    description="Re-reads days from their raw logs under raw/history/ into transactions and "
    "transaction_items, replacing exactly those days' sources (idempotent), then checks them.",
)
