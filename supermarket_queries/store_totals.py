"""A day's sales per store summed through a mark: the store totals rollups, which the store views
read in place of the rows ingested before the mark, so an open-day query sums only what landed
since.

- `store_hourly_totals`: baskets and revenue per store, UTC hour and payment method, from
  transactions (read by store_hourly_sales);
- `store_sku_totals`: units, revenue and lines per store and SKU, from transaction_items (read
  by store_top_skus).

Pure pyarrow, money summed in int64 cents, exactly. The mark is a few minutes back (`SETTLED`):
the handler commits a row within its invocation, and the function's timeout is 120 s, so a row
ingested before the mark is in its table by then. A view trusts a day's rollup only while the
day still holds exactly as many rows ingested before the mark as the rollup summed; a day where
that fails (a dedupe or a re-ingestion since; locally, a commit later than the mark, which
nothing bounds) is summed from its rows, so a stale rollup costs speed, never exactness.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from lake_contract import money, schema, tables
from lake_contract.tables import LakeTables

SETTLED = timedelta(seconds=150)  # past the function's 120 s timeout, with a margin

# A float sum this far below 2**63 proves the exact int64 sum did not overflow.
_LARGEST_SAFE_CENTS = 9.0e18


class TotalsOverflow(ValueError):
    """A group's revenue is beyond what the rollup's decimal(18,2) can hold."""


def _hourly(rows: pa.Table) -> pa.Table:
    return pa.table(
        {
            "store_id": rows["store_id"],
            "hour": pc.floor_temporal(rows["transaction_datetime"], unit="hour"),
            "payment_method": rows["payment_method"],
            "cents": money.to_cents(rows["total_amount"]),
        }
    )


def _per_sku(rows: pa.Table) -> pa.Table:
    units = pc.cast(rows["quantity"], pa.int64())
    return pa.table(
        {
            "store_id": rows["store_id"],
            "sku_id": rows["sku_id"],
            "units": units,
            "cents": pc.multiply_checked(units, money.to_cents(rows["unit_price"])),  # never wraps
        }
    )


@dataclass(frozen=True)
class StoreTotals:
    """One rollup: what it reads of which table, what it groups by, and the column that counts
    the rows summed (what a view checks it against)."""

    name: str
    source: str
    columns: tuple[str, ...]
    keys: tuple[str, ...]
    count: str
    keyed: Callable[[pa.Table], pa.Table]  # a batch -> keys, "cents" and other int64 sums

    @property
    def schema(self) -> pa.Schema:
        return schema.TABLES[self.name]


HOURLY = StoreTotals(
    "store_hourly_totals",
    "transactions",
    ("store_id", "transaction_datetime", "payment_method", "total_amount"),
    ("store_id", "hour", "payment_method"),
    "transactions",
    _hourly,
)
SKUS = StoreTotals(
    "store_sku_totals",
    "transaction_items",
    ("store_id", "sku_id", "quantity", "unit_price"),
    ("store_id", "sku_id"),
    "lines",
    _per_sku,
)
ROLLUPS = (HOURLY, SKUS)


def _batch_sums(totals: StoreTotals, rows: pa.Table) -> tuple[pa.Table, float]:
    """One batch summed per key, with its row count, and the float total that bounds its cents."""
    keyed = totals.keyed(rows.select(list(totals.columns)))
    bound = pc.sum(pc.abs(pc.cast(keyed["cents"], pa.float64()))).as_py() or 0.0
    sums = [c for c in keyed.column_names if c not in totals.keys]
    summed = keyed.group_by(list(totals.keys), use_threads=False).aggregate(
        [(c, "sum") for c in sums] + [("cents", "count")]
    )
    return summed.rename_columns(
        [
            totals.count if c == "cents_count" else c.removesuffix("_sum")
            for c in summed.column_names
        ]
    ), bound


def day_totals(
    totals: StoreTotals, batches: Iterable[pa.Table], summed_through: datetime,
    rolled_up_at: datetime,
) -> pa.Table:  # fmt: skip
    """The rollup's rows for one day from the batches of its source rows ingested before
    summed_through (the caller picks the rows): one row per key with a sale."""
    partials, bound = [], 0.0
    for rows in batches:
        summed, batch_bound = _batch_sums(totals, rows)
        partials.append(summed)
        bound += batch_bound
    if bound > _LARGEST_SAFE_CENTS:
        raise TotalsOverflow(f"the day's {totals.source} amounts sum beyond int64 cents")
    if not partials:  # typed sums of no rows
        source = schema.TABLES[totals.source]
        nothing = pa.table({c: pa.array([], source.field(c).type) for c in totals.columns})
        partials.append(_batch_sums(totals, nothing)[0])
    rows = pa.concat_tables(partials)
    sums = [c for c in rows.column_names if c not in totals.keys]
    day = (
        rows.group_by(list(totals.keys), use_threads=False)
        .aggregate([(c, "sum") for c in sums])
        .rename_columns([*totals.keys, *sums])
        .sort_by([(k, "ascending") for k in totals.keys])
    )
    revenue_type = totals.schema.field("revenue").type
    if day.num_rows and pc.max(pc.abs(day["cents"])).as_py() >= 10**revenue_type.precision:
        raise TotalsOverflow(f"a {totals.name} row's revenue does not fit {revenue_type}")
    columns = {
        "revenue": money.from_cents(day["cents"].combine_chunks(), revenue_type),
        "summed_through": pa.repeat(pa.scalar(summed_through, schema.UTC_MILLIS), day.num_rows),
        "rolled_up_at": pa.repeat(pa.scalar(rolled_up_at, schema.UTC_MILLIS), day.num_rows),
    }
    plain = totals.schema.remove_metadata()
    return pa.Table.from_arrays(
        [columns[f.name] if f.name in columns else day[f.name].cast(f.type) for f in plain],
        schema=plain,
    )


@dataclass(frozen=True)
class DayTotals:
    day: date
    summed_through: datetime
    rows: int  # the rollup's rows for the day
    summed: int  # the day's source rows summed into them
    data_files: int  # of the source table, read
    snapshot_id: int


def roll_up_day(
    lake: LakeTables, totals: StoreTotals, day: date, summed_through: datetime,
    rolled_up_at: datetime,
) -> DayTotals:  # fmt: skip
    """Replaces the day's rollup, in one overwrite commit, with the sums of its source rows
    ingested before summed_through (truncated to the millisecond, as the lake's timestamps
    are), read a data file at a time: memory is bounded by two data files."""
    from pyiceberg.expressions import And, EqualTo, LessThan

    through = summed_through.replace(microsecond=summed_through.microsecond // 1000 * 1000)
    before = LessThan("ingested_at", through.isoformat())
    scan = lake.current(totals.source).scan(
        row_filter=And(tables.day_filter(totals.source, day), before),
        selected_fields=totals.columns,
    )
    planned = list(scan.plan_files())
    # A data file at a time: pyiceberg's batch reader holds every file of the day at once.
    batches = (pa.Table.from_batches([b]) for b in tables.batches_by_file(scan, tasks=planned))
    rows = day_totals(totals, batches, through, rolled_up_at)
    dated = rows.append_column(
        schema.PARTITION.name, pa.repeat(pa.scalar(day, pa.date32()), rows.num_rows)
    )
    with tables.commit_lock():
        target = lake.current(totals.name)
        target.overwrite(
            tables.as_table_rows(totals.name, dated),
            overwrite_filter=EqualTo(schema.PARTITION.name, day.isoformat()),
        )
    return DayTotals(
        day, through, rows.num_rows, pc.sum(rows[totals.count]).as_py() or 0, len(planned),
        target.current_snapshot().snapshot_id,
    )  # fmt: skip
