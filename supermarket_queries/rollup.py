"""The daily per-SKU rollup behind top_skus: one day of transaction_items summed per SKU.

Pure pyarrow, no DuckDB: the Dagster asset runs it over the Iceberg tables (locally or on AWS)
and the query benchmark over a local folder of plain Parquet, with the same result. Money is
summed in integer cents, exactly.
"""

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake_contract import layout, money, schema, tables
from lake_contract.parquet import parquet_bytes
from lake_contract.tables import LakeTables

SKU_DAILY_SALES = "sku_daily_sales"
ITEMS = "transaction_items"
ITEM_COLUMNS = ["sku_id", "quantity", "unit_price"]  # all a rollup reads of transaction_items

# A float sum this far below 2**63 proves the exact int64 sum did not overflow.
_LARGEST_SAFE_CENTS = 9.0e18


_NO_SALES = pa.table(
    {name: pa.array([], type_) for name, type_ in
     [("sku_id", pa.string()), ("units", pa.int64()), ("cents", pa.int64()), ("lines", pa.int64())]}
)  # fmt: skip


class RollupOverflow(ValueError):
    """A day's revenue for one SKU is beyond what the rollup's decimal(18,2) can hold."""


def _file_sums(items: pa.Table) -> tuple[pa.Table, float]:
    """One file's lines summed per SKU in int64 cents, and the float total that bounds them."""
    units = pc.cast(items["quantity"], pa.int64())
    cents = pc.multiply_checked(units, money.to_cents(items["unit_price"]))  # raises, never wraps
    bound = pc.sum(pc.abs(pc.cast(cents, pa.float64()))).as_py() or 0.0
    lines = pa.table({"sku_id": items["sku_id"], "units": units, "cents": cents})
    summed = lines.group_by("sku_id", use_threads=False).aggregate(
        [("units", "sum"), ("cents", "sum"), ("units", "count")]
    )
    return summed.select(["sku_id", "units_sum", "cents_sum", "units_count"]).rename_columns(
        ["sku_id", "units", "cents", "lines"]
    ), bound


def sku_daily_sales(item_files: Iterable[pa.Table], rolled_up_at: datetime) -> pa.Table:
    """One day's rollup from that day's transaction_items files (ITEM_COLUMNS at least):
    one row per SKU sold, with units, revenue to the cent, both ranks and the lines summed."""
    partials, bound = [], 0.0
    for items in item_files:
        summed, file_bound = _file_sums(items.select(ITEM_COLUMNS))
        partials.append(summed)
        bound += file_bound
    if bound > _LARGEST_SAFE_CENTS:
        raise RollupOverflow("the day's line amounts sum beyond int64 cents")
    day = pa.concat_tables(partials) if partials else _NO_SALES
    day = (
        day.group_by("sku_id", use_threads=False)
        .aggregate([("units", "sum"), ("cents", "sum"), ("lines", "sum")])
        .select(["sku_id", "units_sum", "cents_sum", "lines_sum"])
        .rename_columns(["sku_id", "units", "cents", "lines"])
    )
    revenue_type = schema.SKU_DAILY_SALES.field("revenue").type
    if day.num_rows and pc.max(pc.abs(day["cents"])).as_py() >= 10**revenue_type.precision:
        raise RollupOverflow(f"a SKU's revenue for the day does not fit {revenue_type}")
    revenue = money.from_cents(day["cents"].combine_chunks(), revenue_type)
    stamp = pa.repeat(pa.scalar(rolled_up_at, schema.UTC_MILLIS), day.num_rows)
    rolled = pa.Table.from_arrays(
        [day["sku_id"], day["units"], revenue, _rank(day["cents"]), _rank(day["units"]),
         day["lines"], stamp],
        schema=schema.SKU_DAILY_SALES.remove_metadata(),
    )  # fmt: skip
    return rolled.sort_by([("revenue_rank", "ascending"), ("sku_id", "ascending")])


def _rank(values: pa.ChunkedArray) -> pa.Array:
    """SQL's RANK() OVER (ORDER BY values DESC): 1 for the largest, ties share the lowest rank."""
    if len(values) == 0:
        return pa.array([], pa.int64())
    ranks = pc.rank(values.combine_chunks(), sort_keys="descending", tiebreaker="min")
    return pc.cast(ranks, pa.int64())


class Lake(Protocol):
    """What a rollup needs of the lake: a LakeBucket, or a local folder in the benchmark."""

    def keys(self, prefix: str) -> list[str]: ...

    def read(self, key: str) -> bytes: ...

    def write(self, key: str, body: bytes) -> None: ...


@dataclass(frozen=True)
class DayRollup:
    key: str
    rows: int
    lines: int
    item_files: int


def _item_files(lake: Lake, keys: list[str]) -> Iterator[pa.Table]:
    for key in keys:  # one file at a time: memory is bounded by the largest file
        yield pq.read_table(pa.BufferReader(lake.read(key)), columns=ITEM_COLUMNS)


def roll_up_day(lake: Lake, day: date, rolled_up_at: datetime) -> DayRollup:
    """Writes the day's sku_daily_sales object from its transaction_items objects, replacing
    any earlier one. rolled_up_at should precede the call: later files are not in the sums."""
    keys = [k for k in lake.keys(layout.day_prefix(layout.table_prefix(ITEMS), day))
            if k.endswith(".parquet")]  # fmt: skip
    table = sku_daily_sales(_item_files(lake, keys), rolled_up_at)
    key = layout.rollup_key(SKU_DAILY_SALES, day)
    lake.write(key, parquet_bytes(table))
    return DayRollup(key, table.num_rows, pc.sum(table["lines"]).as_py() or 0, len(keys))


def roll_up_iceberg_day(lake: LakeTables, day: date, rolled_up_at: datetime) -> DayRollup:
    """The same rollup on the Iceberg tables: the day's lines planned from the manifest, and
    the day of sku_daily_sales replaced in one overwrite commit."""
    return roll_up_iceberg_days(lake, [day], rolled_up_at)[day]


def _iceberg_day_sums(lake: LakeTables, day: date, rolled_up_at: datetime) -> tuple[pa.Table, int]:
    """The day's sku_daily_sales rows (with dt) and how many data files they were read from."""
    from pyiceberg.expressions import EqualTo

    on_day = EqualTo(schema.PARTITION.name, day.isoformat())
    scan = lake.current(ITEMS).scan(row_filter=on_day, selected_fields=tuple(ITEM_COLUMNS))
    planned = list(scan.plan_files())
    # A data file at a time: at most two in memory.
    batches = tables.batches_by_file(scan, tasks=planned)
    table = sku_daily_sales((pa.Table.from_batches([b]) for b in batches), rolled_up_at)
    dated = table.append_column(
        schema.PARTITION.name, pa.repeat(pa.scalar(day, pa.date32()), table.num_rows)
    )
    return dated, len(planned)


def roll_up_iceberg_days(
    lake: LakeTables, days: list[date], rolled_up_at: datetime
) -> dict[date, DayRollup]:
    """Several days rolled up at once (a backfill's range): each day summed on its own, two
    days at a time, and all of them replaced in one overwrite commit."""
    from concurrent.futures import ThreadPoolExecutor

    from pyiceberg.expressions import In

    with ThreadPoolExecutor(max_workers=2) as pool:  # a day's scan waits on S3 half the time
        sums = dict(zip(days, pool.map(lambda d: _iceberg_day_sums(lake, d, rolled_up_at), days),
                        strict=True))  # fmt: skip
    rows = pa.concat_tables([table for table, _ in sums.values()])
    on_days = In(schema.PARTITION.name, [d.isoformat() for d in days])
    with tables.commit_lock(), warnings.catch_warnings():
        # A day rolled up for the first time has nothing to replace: pyiceberg warns of it.
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        target = lake.current(SKU_DAILY_SALES)
        target.overwrite(tables.as_table_rows(SKU_DAILY_SALES, rows), overwrite_filter=on_days)
    key = f"{lake.database}.{SKU_DAILY_SALES}@{target.current_snapshot().snapshot_id}"
    return {
        day: DayRollup(key, table.num_rows, pc.sum(table["lines"]).as_py() or 0, files)
        for day, (table, files) in sums.items()
    }
