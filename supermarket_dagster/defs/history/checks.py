"""Checks on one day of the fact tables: nothing lost, nothing duplicated, nothing wrong.

Every check is scoped to one daily partition (Dagster 1.13's partitioned asset checks, a
preview feature), so a day is checked alone: inside the backfill run that wrote it, and for
the live feed's days after new data, by the automation sensor below. All checks of a day run
in one step that reads the day's objects once (one GET each), with pyarrow, through the
LakeResource: the same code reads moto locally and S3 in AWS.
"""

import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake_contract import layout, schema
from lake_contract.audit import AuditRecord
from lake_contract.quarantine import quarantine_records
from lake_contract.s3 import LakeBucket
from supermarket_dagster.defs.history import quality
from supermarket_dagster.defs.history.partitions import history_partitions
from supermarket_dagster.resources import LakeResource

SLACK = timedelta(minutes=5)  # an audit record lands this close to its rows' ingested_at
IN_FLIGHT = timedelta(minutes=2)  # past the queue's 3 tries x 30 s, a log not ingested is late
CHECK_CRON = "*/5 * * * *"
_READERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="check-read")

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
            partitions_def=history_partitions,
            automation_condition=after_new_data,
            **kwargs,
        )


DAY_CHECKS = [
    _spec("raw_records_reconcile", TRANSACTIONS,
          "Records read from raw logs = rows in the lake + records in quarantine, per source, "
          "from the latest audit record of each source and the objects themselves."),
    _spec("transaction_id_unique", TRANSACTIONS, "No transaction_id appears twice in the day."),
    _spec("store_ids_known", TRANSACTIONS, "Every store_id is in supermarkets.",
          additional_deps=["supermarkets"]),
    _spec("total_matches_items", TRANSACTIONS,
          "total_amount = sum(quantity * unit_price) of its items to the cent; every item's "
          "transaction exists.", additional_deps=[ITEMS]),
    _spec("schema_matches", TRANSACTIONS, "Every Parquet object has schema.py's schema."),
    _spec("sku_ids_known", ITEMS, "Every sku_id is in skus.", additional_deps=["skus"]),
    _spec("schema_matches", ITEMS, "Every Parquet object has schema.py's schema."),
]  # fmt: skip


@dataclass(frozen=True)
class ParquetObject:
    key: str
    schema_problem: str | None
    rows: pa.Table  # all columns when the schema is right; else only what could be read


@dataclass(frozen=True)
class LakeDay:
    """One day of one fact table as the lake holds it, object by object."""

    table: str
    objects: list[ParquetObject]

    @cached_property
    def rows(self) -> pa.Table:
        """The rows of every object with the right schema (the others fail schema_matches)."""
        good = [o.rows for o in self.objects if o.schema_problem is None]
        empty = schema.TABLES[self.table].empty_table()
        return pa.concat_tables(good) if good else empty

    def rows_by_source(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for obj in self.objects:
            if "source_key" not in obj.rows.column_names:
                counts[f"(no source_key column) {obj.key}"] = obj.rows.num_rows
                continue
            for entry in pc.value_counts(obj.rows["source_key"]).to_pylist():
                counts[str(entry["values"])] = counts.get(str(entry["values"]), 0) + entry["counts"]
        return counts


def _parquet_object(table: str, key: str, body: bytes) -> ParquetObject:
    try:
        file = pq.ParquetFile(pa.BufferReader(body))
    except (pa.ArrowInvalid, OSError) as exc:  # its rows are unaccounted for: reconcile says so
        return ParquetObject(key, f"not a readable Parquet file: {exc}", pa.table({}))
    problem = quality.schema_difference(file.schema_arrow, table)
    if problem is None:
        return ParquetObject(key, None, file.read())
    readable = [c for c in ("source_key", "ingested_at") if c in file.schema_arrow.names]
    return ParquetObject(key, problem, file.read(columns=readable))


def read_day(lake: LakeBucket, table: str, day: date) -> LakeDay:
    """Every object under lake/<table>/dt=<day>/, fetched concurrently (one GET each)."""
    keys = lake.keys(layout.day_prefix(layout.table_prefix(table), day))
    bodies = lake.read_many(keys)
    return LakeDay(table, [_parquet_object(table, k, b) for k, b in zip(keys, bodies, strict=True)])


def _reference_ids(lake: LakeBucket, table: str, column: str) -> pa.ChunkedArray | None:
    body = lake.read_if_present(layout.reference_key(table))
    if body is None:
        return None
    return pq.read_table(pa.BufferReader(body), columns=[column])[column]


def _quarantine_lines(lake: LakeBucket, source_key: str) -> int:
    return len(quarantine_records(lake.read_if_present(layout.quarantine_key(source_key)) or b""))


def _audit_records(
    lake: LakeBucket, start: datetime, end: datetime, wanted: set[str], must_find: set[str]
) -> list[tuple[str, AuditRecord]]:
    """The audit records of `wanted` source ids finished between start and end; past end only
    while some of `must_find` is still missing (a log ingested long after it landed)."""
    after = layout.audit_listing_start(int(start.timestamp() * 1000))
    end_ms = int(end.timestamp() * 1000)
    keys, found = [], set()
    for page in lake.pages(layout.AUDIT, after):
        for key in (o.key for o in page):
            if layout.audit_time_ms(key) > end_ms and must_find <= found:
                break
            source = layout.audit_source_id(key)
            if source in wanted:
                keys.append(key)
                found.add(source)
        else:
            continue
        break
    bodies = lake.read_many(keys)
    return [(key, AuditRecord.from_json(body)) for key, body in zip(keys, bodies, strict=True)]


def _ingested_at_by_source(days: list[LakeDay]) -> dict[str, datetime]:
    """The latest ingested_at of each source's rows on the day."""
    latest: dict[str, datetime] = {}
    for table_day in days:
        for obj in table_day.objects:
            if not {"source_key", "ingested_at"} <= set(obj.rows.column_names):
                continue
            grouped = obj.rows.group_by("source_key").aggregate([("ingested_at", "max")])
            pairs = zip(grouped["source_key"].to_pylist(), grouped["ingested_at_max"].to_pylist(),
                        strict=True)  # fmt: skip
            for source, at in pairs:
                latest[source] = max(latest.get(source, at), at)
    return latest


def _last_seen(source: str, *seen: dict[str, datetime]) -> datetime:
    return max((times[source] for times in seen if source in times),
               default=datetime.min.replace(tzinfo=UTC))  # fmt: skip


def reconcile_day(
    lake: LakeBucket, day: date, transactions: LakeDay, items: LakeDay
) -> quality.Reconciliation:
    """Gathers each source's audit record and its rows and quarantine lines, and adds them up."""
    now = datetime.now(UTC)
    on_day = {t.table: t.rows_by_source() for t in (transactions, items)}
    raw: dict[str, datetime] = {}
    for neighbour in (day - timedelta(days=1), day, day + timedelta(days=1)):
        for prefix in (layout.RAW_HISTORY, layout.RAW_INCOMING):
            raw |= {
                o.key: o.last_modified for o in lake.listing(layout.day_prefix(prefix, neighbour))
            }
    sources = set(raw) | set(on_day["transactions"]) | set(on_day["transaction_items"])
    ingested = _ingested_at_by_source([transactions, items])
    at_home = {s for s in raw if quality.home_day(s, None) == day}
    # An audit record lands just after its rows' ingested_at; for a log with no rows on the
    # day (all quarantined, or not ingested yet), after its raw object landed.
    times = list(ingested.values()) + [raw[s] for s in at_home if s not in ingested]
    ids = {layout.source_id(s): s for s in sources}
    overdue = {layout.source_id(s) for s in at_home if now - raw[s] > IN_FLIGHT}
    records = (
        _audit_records(lake, min(times) - SLACK, max(times) + SLACK, set(ids), overdue)
        if times
        else []
    )
    latest = quality.latest_per_source(records)
    counts = []
    for source in sorted(sources):
        audit = latest.get(source)
        count = quality.SourceCount(
            source_key=source,
            audit=audit,
            in_flight=audit is None and now - _last_seen(source, raw, ingested) <= IN_FLIGHT,
            lake_rows={t: on_day[t][source] for t in on_day if source in on_day[t]},
        )
        if audit and audit.records_quarantined and quality.home_day(source, audit) == day:
            count.quarantined = _quarantine_lines(lake, source)
        counts.append(count)
    return quality.reconcile(day, counts)


def _offenders_metadata(prefix: str, offenders: quality.Offenders) -> dict[str, Any]:
    return {f"{prefix}_rows": offenders.count, f"{prefix}_sample": ", ".join(offenders.sample)}


def _result(key: dg.AssetCheckKey, passed: bool, **metadata: Any) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key.asset_key,
        check_name=key.name,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
    )


def _schema_result(key: dg.AssetCheckKey, day: LakeDay) -> dg.AssetCheckResult:
    wrong = {o.key: o.schema_problem for o in day.objects if o.schema_problem}
    sample = dict(sorted(wrong.items())[: quality.SAMPLE])
    return _result(key, not wrong, objects=len(day.objects), objects_wrong=len(wrong),
                   wrong_objects=dg.MetadataValue.json(sample))  # fmt: skip


def day_results(
    lake: LakeBucket, day: date, selected_keys: Iterable[dg.AssetCheckKey]
) -> Iterator[dg.AssetCheckResult]:
    """The results of the selected checks for one day, reading the day's objects once."""
    selected = {(k.asset_key, k.name): k for k in selected_keys}
    transactions = read_day(lake, "transactions", day)
    items = read_day(lake, "transaction_items", day)

    if key := selected.get((TRANSACTIONS, "raw_records_reconcile")):
        r = reconcile_day(lake, day, transactions, items)
        yield _result(
            key, r.passed,
            raw_records=r.raw_records, lake_rows=r.lake_rows,
            quarantined_records=r.quarantined_records,
            items_expected=r.items_expected, items_in_lake=r.items_in_lake,
            sources=r.sources, sources_in_flight=len(r.in_flight),
            sources_disagreeing=len(r.disagreeing),
            disagreeing=dg.MetadataValue.json(dict(list(r.disagreeing.items())[: quality.SAMPLE])),
        )  # fmt: skip
    if key := selected.get((TRANSACTIONS, "transaction_id_unique")):
        rows = transactions.rows
        duplicates = quality.duplicate_ids(rows["transaction_id"])
        yield _result(key, duplicates.none, rows=rows.num_rows,
                      **_offenders_metadata("duplicate", duplicates))  # fmt: skip
    for asset, name, table, column, table_day in (
        (TRANSACTIONS, "store_ids_known", "supermarkets", "store_id", transactions),
        (ITEMS, "sku_ids_known", "skus", "sku_id", items),
    ):
        if key := selected.get((asset, name)):
            known = _reference_ids(lake, table, column)
            if known is None:
                yield _result(key, False, reason=f"{table} is not in the lake yet")
                continue
            unknown = quality.unknown_ids(table_day.rows[column], known)
            yield _result(key, unknown.none, rows=table_day.rows.num_rows, known_ids=len(known),
                          **_offenders_metadata("unknown", unknown))  # fmt: skip
    if key := selected.get((TRANSACTIONS, "total_matches_items")):
        report = quality.totals_against_items(transactions.rows, items.rows)
        yield _result(
            key, report.passed,
            **_offenders_metadata("mismatched", report.mismatched),
            **_offenders_metadata("without_items", report.without_items),
            **_offenders_metadata("orphan_item", report.orphan_items),
        )  # fmt: skip
    for asset, table_day in ((TRANSACTIONS, transactions), (ITEMS, items)):
        if key := selected.get((asset, "schema_matches")):
            yield _schema_result(key, table_day)


@dg.multi_asset_check(specs=DAY_CHECKS, can_subset=True)
def fact_table_day_checks(
    context: dg.AssetCheckExecutionContext, lake: LakeResource
) -> Iterator[dg.AssetCheckResult]:
    """Checks one day of transactions and transaction_items: counts, keys, totals, schemas."""
    day = date.fromisoformat(context.partition_key)
    yield from day_results(lake.objects(), day, context.selected_asset_check_keys)


fact_table_checks_sensor = dg.AutomationConditionSensorDefinition(
    "fact_table_checks_sensor",
    target=dg.AssetSelection.checks(fact_table_day_checks),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Runs the day checks of today and yesterday after new data (see after_new_data).",
)
