"""Checks on one day of the fact tables: nothing lost, nothing duplicated, nothing wrong.

Every check is scoped to one daily partition (Dagster 1.13's partitioned asset checks, a
preview feature), so a day is checked alone: inside the backfill run that wrote it, and for
the live feed's days after new data, by the automation sensor below. All checks of a day run
in one step that reads the day's rows once (lake_day), or for today and yesterday, checked
again every few minutes, each data file's tally once (file_tallies); the rules themselves are
pure Arrow functions (quality).

A backfill run covers a range of days (days_backfill_policy), and an AssetCheckResult carries
no partition: the step yields each day's results as AssetCheckEvaluations with their partition
and the day's materialization they checked, so every day keeps its own result in the UI.
"""

import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa

# Not exported by dagster; the evaluation needs it to name the materialization it checked.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from supermarket_dagster import file_tallies, lake_day, quality
from supermarket_dagster.partitions import day_partitions, latest_materialization
from supermarket_dagster.resources import LakeResource

CHECK_CRON = "*/5 * * * *"

TRANSACTIONS = dg.AssetKey("transactions")
ITEMS = dg.AssetKey("transaction_items")

# Today and yesterday, once per cron tick, after new rows have landed in that day: the live
# feed reports today every 10 s, and yesterday's last files are checked after midnight once.
# Older days are checked inside the backfill run that (re)writes them.
after_new_data = (
    dg.AutomationCondition.in_latest_time_window(timedelta(days=2))
    & dg.AutomationCondition.cron_tick_passed(CHECK_CRON).since_last_handled()
    & dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated()).since(
        dg.AutomationCondition.cron_tick_passed(CHECK_CRON)
    )
    & ~dg.AutomationCondition.in_progress()  # a long day's check never piles up behind itself
).with_label(f"after new data, at most once per {CHECK_CRON}")


def _spec(name: str, asset: dg.AssetKey, description: str, **kwargs: Any) -> dg.AssetCheckSpec:
    # Partitioned checks are a preview in 1.13 and warn on every definition; we rely on them
    # knowingly (tests cover their execution), so that one warning is silenced here only.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name,
            asset=asset,
            description=description,
            partitions_def=day_partitions,
            automation_condition=after_new_data,
            **kwargs,
        )


DAY_CHECKS = [
    _spec("raw_records_reconcile", TRANSACTIONS,
          "Records read from raw logs = rows in the lake + records in quarantine, per source, "
          "from the latest audit record of each source and the table's rows."),
    _spec("transaction_id_unique", TRANSACTIONS, "No transaction_id appears twice in the day."),
    _spec("store_ids_known", TRANSACTIONS, "Every store_id is in supermarkets.",
          additional_deps=["supermarkets"]),
    _spec("total_matches_items", TRANSACTIONS,
          "total_amount = sum(quantity * unit_price) of its items to the cent; every item's "
          "transaction exists.", additional_deps=[ITEMS]),
    _spec("schema_matches", TRANSACTIONS, "The Iceberg table has schema.py's columns and types."),
    _spec("sku_ids_known", ITEMS, "Every sku_id is in skus.", additional_deps=["skus"]),
    _spec("schema_matches", ITEMS, "The Iceberg table has schema.py's columns and types."),
]  # fmt: skip


# The columns the checks read (the others were half a day's size in memory): ids, money, and
# each row's source and ingestion time; the schema check reads the table's schema, not rows.
CHECKED_COLUMNS = {
    "transactions": ("transaction_id", "store_id", "total_amount", "source_key", "ingested_at"),
    "transaction_items": ("transaction_id", "sku_id", "quantity", "unit_price", "source_key",
                          "ingested_at"),
}  # fmt: skip


# Small days are checked four at once (half their time waits on S3); large ones fewer, so that
# the days checked at once have at most this many item lines. A day checked holds its
# transactions and two data files of its lines; at 2M lines a day, two days at once were
# 15-20% faster than one in one process (the tallies hash little; 2026-12-07), three no faster
# than two, and the run worker stayed under its backfill step's peak.
CHECKED_ROWS_AT_ONCE = 4_000_000
MOST_DAYS_AT_ONCE = 4


def days_at_once(lake: LakeResource, days: list[date]) -> int:
    """How many of these days to check at once: by the largest day's item rows, from the
    manifest (no data file is read)."""
    from pyiceberg.expressions import In

    items = lake.tables().current("transaction_items")
    partitions = items.inspect.partitions(row_filter=In("dt", [d.isoformat() for d in days]))
    largest = max(partitions["record_count"].to_pylist(), default=0)
    return max(1, min(MOST_DAYS_AT_ONCE, CHECKED_ROWS_AT_ONCE // max(largest, 1)))


def _offenders_metadata(prefix: str, offenders: quality.Offenders) -> dict[str, Any]:
    return {f"{prefix}_rows": offenders.count, f"{prefix}_sample": ", ".join(offenders.sample)}


@dataclass(frozen=True)
class DayCheck:
    """One check's result on one day, before Dagster ties it to the materialization it saw."""

    key: dg.AssetCheckKey
    day: date
    passed: bool
    metadata: dict[str, Any]


def day_results(
    lake: LakeResource,
    day: date,
    selected_keys: Iterable[dg.AssetCheckKey],
    shared: lake_day.SharedReads | None = None,
    rechecked: bool | None = None,
) -> Iterator[DayCheck]:
    """The results of the selected checks for one day (with shared, what the other days of the
    step read too is read only once).

    A day checked again after each change (rechecked; by default today and yesterday, see
    file_tallies.first_kept_day) is checked from its data files' tallies, kept ones read and
    those of large files kept, with the sources found agreeing (lake_day.Reconciled); when the
    hashes do not settle the ids' checks, or a file cannot be read, the day's rows are read as
    they are, to name the offenders. A day checked once (a backfill's) is read as it is: a
    tally of each file would cost more than it saves (the 10M backfill's check step took 20.9
    s from tallies against 14-17 s reading, 2026-12-07)."""
    selected = {(k.asset_key, k.name): k for k in selected_keys}
    objects = lake.objects()
    shared = shared or lake_day.SharedReads(objects)
    if rechecked is None:
        rechecked = day >= file_tallies.first_kept_day()
    if not rechecked:
        yield from _read_results(lake, day, selected, shared)
        return
    try:
        tallied = [file_tallies.tally_day(lake.tables(), objects, asset.path[-1], day, keep=True)
                   for asset in (TRANSACTIONS, ITEMS)]  # fmt: skip
    except (OSError, pa.ArrowInvalid):  # a data file lost or damaged: read_day says which
        yield from _read_results(lake, day, selected, shared)
        return
    yield from _tallied_results(lake, day, selected, shared, *tallied)


def _result(day: date, key: dg.AssetCheckKey, passed: bool, **metadata: Any) -> DayCheck:
    return DayCheck(key, day, passed, metadata)


def _reconcile_result(
    lake: LakeResource,
    day: date,
    key: dg.AssetCheckKey,
    transactions: lake_day.SourceRows,
    items: lake_day.SourceRows,
    shared: lake_day.SharedReads,
    keep: bool = False,
) -> DayCheck:
    """keep: the sources this check finds agreeing are kept, and those the last one kept are
    counted as they were while unchanged (lake_day.Reconciled)."""
    objects = lake.objects()
    known = lake_day.read_reconciled(objects, day) if keep else None
    r, settled = lake_day.reconcile_day_since(objects, day, transactions, items, shared, known)
    if keep:
        lake_day.keep_reconciled(objects, day, settled)
    return _result(
        day, key, r.passed,
        raw_records=r.raw_records, lake_rows=r.lake_rows,
        quarantined_records=r.quarantined_records,
        items_expected=r.items_expected, items_in_lake=r.items_in_lake,
        sources=r.sources, sources_in_flight=len(r.in_flight),
        sources_disagreeing=len(r.disagreeing),
        disagreeing=dg.MetadataValue.json(dict(list(r.disagreeing.items())[: quality.SAMPLE])),
    )  # fmt: skip


def _unique_result(
    day: date, key: dg.AssetCheckKey, rows: int, duplicates: quality.Offenders
) -> DayCheck:
    return _result(day, key, duplicates.none, rows=rows,
                   **_offenders_metadata("duplicate", duplicates))  # fmt: skip


def _known_result(
    day: date, key: dg.AssetCheckKey, rows: int, known: int, unknown: quality.Offenders
) -> DayCheck:
    return _result(day, key, unknown.none, rows=rows, known_ids=known,
                   **_offenders_metadata("unknown", unknown))  # fmt: skip


def _totals_result(day: date, key: dg.AssetCheckKey, report: quality.TotalsReport) -> DayCheck:
    return _result(
        day, key, report.passed,
        **_offenders_metadata("mismatched", report.mismatched),
        **_offenders_metadata("without_items", report.without_items),
        **_offenders_metadata("orphan_item", report.orphan_items),
    )  # fmt: skip


def _not_in_lake(day: date, key: dg.AssetCheckKey, table: str) -> DayCheck:
    return _result(day, key, False, reason=f"{table} is not in the lake yet")


def _tallied_results(
    lake: LakeResource,
    day: date,
    selected: dict[tuple[dg.AssetKey, str], dg.AssetCheckKey],
    shared: lake_day.SharedReads,
    transactions: file_tallies.DayTally,
    items: file_tallies.DayTally,
) -> Iterator[DayCheck]:
    if key := selected.get((TRANSACTIONS, "raw_records_reconcile")):
        yield _reconcile_result(lake, day, key, transactions.source_rows(), items.source_rows(),
                                shared, keep=True)  # fmt: skip
    unique_key = selected.get((TRANSACTIONS, "transaction_id_unique"))
    totals_key = selected.get((TRANSACTIONS, "total_matches_items"))
    if unique_key or totals_key:
        hashed = quality.hashed_report(transactions.baskets, items.baskets)
        if (unique_key and not hashed.ids_unique) or (totals_key and not hashed.totals_agree):
            # The hashes say something is wrong: the ids themselves name what.
            wanted = {k: v for k, v in selected.items() if v in (unique_key, totals_key)}
            yield from _read_results(lake, day, wanted, shared)
        else:
            if unique_key:
                yield _unique_result(day, unique_key, transactions.rows, quality.Offenders(0, []))
            if totals_key:
                none = quality.Offenders(0, [])
                yield _totals_result(day, totals_key, quality.TotalsReport(none, none, none))
    for asset, tally, reference, column in (
        (TRANSACTIONS, transactions, "supermarkets", "store_id"),
        (ITEMS, items, "skus", "sku_id"),
    ):
        if key := selected.get((asset, f"{column}s_known")):
            known = shared.reference_ids(reference, column)
            if known is None:
                yield _not_in_lake(day, key, reference)
            else:
                unknown = quality.unknown_codes(tally.code_rows(), known)
                yield _known_result(day, key, tally.rows, len(known), unknown)
    for asset, tally in ((TRANSACTIONS, transactions), (ITEMS, items)):
        if key := selected.get((asset, "schema_matches")):
            problem = tally.schema_problem
            yield _result(day, key, problem is None, rows=tally.rows, difference=problem or "none")


def _read_results(
    lake: LakeResource,
    day: date,
    selected: dict[tuple[dg.AssetKey, str], dg.AssetCheckKey],
    shared: lake_day.SharedReads,
) -> Iterator[DayCheck]:
    """The selected checks on the day's rows read as they are: the day's transactions held,
    its item lines, six times as many, batch by batch through the rules that need them, each
    keeping only its tally."""
    tables = lake.tables()
    transactions = lake_day.read_day(tables, "transactions", day,
                                     CHECKED_COLUMNS["transactions"], ("source_key",))  # fmt: skip

    wants_skus = (ITEMS, "sku_ids_known") in selected
    known_skus = shared.reference_ids("skus", "sku_id") if wants_skus else None

    def item_rules() -> tuple[quality.LineTotals, quality.UnknownIds | None]:
        unknown = None if known_skus is None else quality.UnknownIds("sku_id", known_skus)
        return quality.LineTotals(), unknown

    line_totals, unknown_skus = item_rules()
    rules = [line_totals.add] if (TRANSACTIONS, "total_matches_items") in selected else []
    rules += [unknown_skus.add] if unknown_skus else []
    items = lake_day.scan_day(tables, "transaction_items", day,
                              CHECKED_COLUMNS["transaction_items"], rules)  # fmt: skip
    if items.unreadable:
        line_totals, unknown_skus = item_rules()  # its rows are gone: the rules saw none of them

    if key := selected.get((TRANSACTIONS, "raw_records_reconcile")):
        yield _reconcile_result(lake, day, key, lake_day.SourceRows.of(transactions.rows),
                                items.sources, shared)  # fmt: skip
    if key := selected.get((TRANSACTIONS, "transaction_id_unique")):
        rows = transactions.rows
        yield _unique_result(day, key, rows.num_rows, quality.duplicate_ids(rows["transaction_id"]))
    if key := selected.get((TRANSACTIONS, "store_ids_known")):
        known = shared.reference_ids("supermarkets", "store_id")
        if known is None:
            yield _not_in_lake(day, key, "supermarkets")
        else:
            unknown = quality.unknown_ids(transactions.rows["store_id"], known)
            yield _known_result(day, key, transactions.rows.num_rows, len(known), unknown)
    if key := selected.get((ITEMS, "sku_ids_known")):
        if unknown_skus is None:
            yield _not_in_lake(day, key, "skus")
        else:
            yield _known_result(day, key, items.rows, len(unknown_skus.known), unknown_skus.found)
    if key := selected.get((TRANSACTIONS, "total_matches_items")):
        yield _totals_result(day, key, line_totals.against(transactions.rows))
    for asset, rows, problem in (
        (TRANSACTIONS, transactions.rows.num_rows, transactions.schema_problem),
        (ITEMS, items.rows, items.schema_problem),
    ):
        if key := selected.get((asset, "schema_matches")):
            yield _result(day, key, problem is None, rows=rows, difference=problem or "none")


def _checked_materialization(
    instance: dg.DagsterInstance, asset: dg.AssetKey, day: str
) -> "AssetCheckEvaluationTargetMaterializationData | None":
    """The day's latest materialization, which the result is about (as AssetCheckResult finds
    it for a one-partition step): a later one makes the day's result out of date in the UI."""
    record = latest_materialization(instance, asset, day)
    if record is None:
        return None
    return AssetCheckEvaluationTargetMaterializationData(
        run_id=record.run_id, storage_id=record.storage_id, timestamp=record.timestamp
    )


def evaluation(
    check: DayCheck, target: "AssetCheckEvaluationTargetMaterializationData | None"
) -> dg.AssetCheckEvaluation:
    """The day's result as Dagster records it, with its partition and what it checked."""
    return dg.AssetCheckEvaluation(
        asset_key=check.key.asset_key,
        check_name=check.key.name,
        passed=check.passed,
        metadata=check.metadata,
        severity=dg.AssetCheckSeverity.ERROR,
        partition=check.day.isoformat(),
        target_materialization_data=target,
    )


@dg.multi_asset_check(specs=DAY_CHECKS, can_subset=True)
def fact_table_day_checks(
    context: dg.AssetCheckExecutionContext, lake: LakeResource
) -> Iterator[dg.AssetCheckEvaluation]:
    """Checks each day of the run's range of transactions and transaction_items: counts, keys,
    totals, schemas; a result per day."""
    days = [date.fromisoformat(key) for key in context.partition_keys]
    keys = context.selected_asset_check_keys
    shared = lake_day.SharedReads(lake.objects())

    def checked(day: date) -> list[DayCheck]:
        results = list(day_results(lake, day, keys, shared))
        pa.default_memory_pool().release_unused()  # a large day's buffers, back to the system
        return results

    with ThreadPoolExecutor(max_workers=days_at_once(lake, days)) as pool:
        results = pool.map(checked, days)
        for checks_of_day in results:
            targets: dict[dg.AssetKey, Any] = {}
            for check in checks_of_day:
                asset = check.key.asset_key
                if asset not in targets:  # one lookup per table and day, not per check
                    targets[asset] = _checked_materialization(
                        context.instance, asset, check.day.isoformat()
                    )
                yield evaluation(check, targets[asset])


fact_table_checks_sensor = dg.AutomationConditionSensorDefinition(
    "fact_table_checks_sensor",
    target=dg.AssetSelection.checks(fact_table_day_checks),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Runs the day checks of today and yesterday after new data (see after_new_data).",
)
