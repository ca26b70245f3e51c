"""The day's baskets per store, UTC hour and payment method, summed through a mark: the
store_hourly_totals rollup, which store_hourly_sales reads in place of the transactions
ingested before the mark, so an open-day query sums only what landed since.

Pure pyarrow, money summed in int64 cents, exactly. The mark is a few minutes back (Dagster's
rollup takes `SETTLED`): the handler commits a transaction within its invocation, and the
function's timeout is 120 s, so a row ingested before the mark is in the table by then. The view
trusts a day's rollup only while the day still holds exactly as many transactions ingested
before the mark as the rollup summed; a day where that fails (a dedupe or a re-ingestion since,
a commit later than the mark locally, where nothing bounds it) is summed from its rows, so a
stale rollup costs speed, never exactness.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from lake_contract import money, schema, tables
from lake_contract.tables import LakeTables

STORE_HOURLY_TOTALS = "store_hourly_totals"
TRANSACTIONS = "transactions"
TRANSACTION_COLUMNS = ["store_id", "transaction_datetime", "payment_method", "total_amount"]
KEYS = ["store_id", "hour", "payment_method"]
SETTLED = timedelta(seconds=150)  # past the function's 120 s timeout, with a margin

# A float sum this far below 2**63 proves the exact int64 sum did not overflow.
_LARGEST_SAFE_CENTS = 9.0e18


class TotalsOverflow(ValueError):
    """A group's revenue is beyond what the rollup's decimal(18,2) can hold."""


def _batch_sums(rows: pa.Table) -> tuple[pa.Table, float]:
    """One batch's baskets summed per store, hour and payment method, in int64 cents, and the
    float total that bounds them."""
    cents = money.to_cents(rows["total_amount"])
    bound = pc.sum(pc.abs(pc.cast(cents, pa.float64()))).as_py() or 0.0
    keyed = pa.table(
        {
            "store_id": rows["store_id"],
            "hour": pc.floor_temporal(rows["transaction_datetime"], unit="hour"),
            "payment_method": rows["payment_method"],
            "cents": cents,
        }
    )
    summed = keyed.group_by(KEYS, use_threads=False).aggregate(
        [("cents", "count"), ("cents", "sum")]
    )
    return summed.select([*KEYS, "cents_count", "cents_sum"]).rename_columns(
        [*KEYS, "transactions", "cents"]
    ), bound


def store_hourly_totals(
    batches: Iterable[pa.Table], summed_through: datetime, rolled_up_at: datetime
) -> pa.Table:
    """The rollup's rows for one day from its transactions ingested before summed_through
    (TRANSACTION_COLUMNS at least; the caller picks the rows): one row per store, hour and
    payment method with a sale."""
    partials, bound = [], 0.0
    for rows in batches:
        summed, batch_bound = _batch_sums(rows.select(TRANSACTION_COLUMNS))
        partials.append(summed)
        bound += batch_bound
    if bound > _LARGEST_SAFE_CENTS:
        raise TotalsOverflow("the day's basket totals sum beyond int64 cents")
    hour_type = schema.STORE_HOURLY_TOTALS.field("hour").type
    empty = pa.table(
        {"store_id": pa.array([], pa.string()), "hour": pa.array([], hour_type),
         "payment_method": pa.array([], pa.string()), "transactions": pa.array([], pa.int64()),
         "cents": pa.array([], pa.int64())}
    )  # fmt: skip
    day = pa.concat_tables([p.cast(empty.schema) for p in partials]) if partials else empty
    day = (
        day.group_by(KEYS, use_threads=False)
        .aggregate([("transactions", "sum"), ("cents", "sum")])
        .select([*KEYS, "transactions_sum", "cents_sum"])
        .rename_columns([*KEYS, "transactions", "cents"])
        .sort_by([(k, "ascending") for k in KEYS])
    )
    revenue_type = schema.STORE_HOURLY_TOTALS.field("revenue").type
    if day.num_rows and pc.max(pc.abs(day["cents"])).as_py() >= 10**revenue_type.precision:
        raise TotalsOverflow(f"a store's revenue for an hour does not fit {revenue_type}")

    def stamp(at: datetime) -> pa.Array:
        return pa.repeat(pa.scalar(at, schema.UTC_MILLIS), day.num_rows)

    return pa.Table.from_arrays(
        [day["store_id"], day["hour"], day["payment_method"], day["transactions"],
         money.from_cents(day["cents"].combine_chunks(), revenue_type),
         stamp(summed_through), stamp(rolled_up_at)],
        schema=schema.STORE_HOURLY_TOTALS.remove_metadata(),
    )  # fmt: skip


@dataclass(frozen=True)
class DayTotals:
    day: date
    summed_through: datetime
    rows: int  # the rollup's rows for the day
    transactions: int  # the day's transactions summed into them
    data_files: int  # of transactions, read
    snapshot_id: int


def roll_up_day(
    lake: LakeTables, day: date, summed_through: datetime, rolled_up_at: datetime
) -> DayTotals:
    """Replaces the day's store_hourly_totals, in one overwrite commit, with the sums of its
    transactions ingested before summed_through (truncated to the millisecond, as the lake's
    timestamps are), read batch by batch: memory is bounded by a data file."""
    from pyiceberg.expressions import And, EqualTo, LessThan

    through = summed_through.replace(microsecond=summed_through.microsecond // 1000 * 1000)
    before = LessThan("ingested_at", through.isoformat())
    scan = lake.current(TRANSACTIONS).scan(
        row_filter=And(tables.day_filter(TRANSACTIONS, day), before),
        selected_fields=tuple(TRANSACTION_COLUMNS),
    )
    data_files = len(scan.plan_files())
    batches = (pa.Table.from_batches([b]) for b in scan.to_arrow_batch_reader())
    totals = store_hourly_totals(batches, through, rolled_up_at)
    dated = totals.append_column(
        schema.PARTITION.name, pa.repeat(pa.scalar(day, pa.date32()), totals.num_rows)
    )
    with tables.commit_lock():
        target = lake.current(STORE_HOURLY_TOTALS)
        target.overwrite(
            tables.as_table_rows(STORE_HOURLY_TOTALS, dated),
            overwrite_filter=EqualTo(schema.PARTITION.name, day.isoformat()),
        )
    return DayTotals(
        day, through, totals.num_rows, pc.sum(totals["transactions"]).as_py() or 0, data_files,
        target.current_snapshot().snapshot_id,
    )  # fmt: skip
