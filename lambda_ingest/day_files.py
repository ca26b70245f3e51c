"""One source's rows cut per UTC day: the unit every writer of the fact tables works in."""

from dataclasses import dataclass
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from lake_contract import schema
from lambda_ingest.transform import TransformResult


@dataclass(frozen=True)
class DayRows:
    """The rows of one UTC day, shaped exactly like the lake's tables (dt lives in the path)."""

    day: date
    transactions: pa.Table
    transaction_items: pa.Table

    def tables(self) -> dict[str, pa.Table]:
        return {"transactions": self.transactions, "transaction_items": self.transaction_items}


def split_by_day(result: TransformResult) -> list[DayRows]:
    """Groups rows by their dt column in one sort per table (no per-day filter passes)."""
    days = pc.unique(result.transactions[schema.PARTITION.name]).to_pylist()
    if len(days) <= 1:
        return [
            DayRows(day, _without_dt(result.transactions), _without_dt(result.transaction_items))
            for day in days
        ]
    transactions = _grouped(result.transactions)
    items = _grouped(result.transaction_items)
    return [
        DayRows(day, _without_dt(transactions[day]), _without_dt(items[day]))
        for day in sorted(days)
    ]


def _grouped(table: pa.Table) -> dict[date, pa.Table]:
    dt = table[schema.PARTITION.name]
    # A log is written in till order, so days are usually contiguous already: slice, no copy.
    # Otherwise a stable sort keeps each basket's lines in order.
    ordered = table if _ascending(dt) else table.take(pc.sort_indices(dt))
    counts = pc.value_counts(ordered[schema.PARTITION.name]).to_pylist()
    groups, offset = {}, 0
    for entry in counts:  # value_counts keeps first-seen order, i.e. ascending here
        groups[entry["values"]] = ordered.slice(offset, entry["counts"])
        offset += entry["counts"]
    return groups


def _ascending(values: pa.ChunkedArray) -> bool:
    values = values.combine_chunks()
    later = pc.greater_equal(values.slice(1), values.slice(0, len(values) - 1))
    return pc.all(later).as_py() is not False


def _without_dt(table: pa.Table) -> pa.Table:
    return table.drop_columns([schema.PARTITION.name])
