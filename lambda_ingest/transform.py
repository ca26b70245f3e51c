"""Transaction logs (newline-delimited JSON, plain or gzip) -> lake rows and rejects.

Pure: bytes in, Arrow tables and rejects out, no I/O. The happy path is one multi-threaded
`pyarrow.json.read_json` with an explicit schema followed by vectorised checks; only a file
whose fast parse fails is split, by bisection, to isolate the lines that break it.
"""

import gzip
import io
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from lambda_ingest import money, schema

# Sanity bounds: they keep integer-cent arithmetic far from int64 overflow
# (10_000 lines x 10_000 units x 99_999_999.99 < 2**63 cents).
MAX_ITEMS = 10_000
MAX_QUANTITY = 10_000
MAX_TOTAL_CENTS = 10**12 - 1  # decimal(12,2)
RAW_TEXT_LIMIT = 64 * 1024  # longest raw line kept in a reject

_GZIP_MAGIC = b"\x1f\x8b"
_BLOCK_SIZE = 4 << 20  # bytes per parse block; larger than any line within MAX_ITEMS
_NS_UTC = pa.timestamp("ns", tz="UTC")


def _log_type(table: pa.Schema, name: str) -> pa.DataType:
    return table.field(name).type


_ITEM = pa.struct(
    [
        ("sku_id", _log_type(schema.TRANSACTION_ITEMS, "sku_id")),
        ("quantity", pa.int64()),  # wider than the table's int32, to report huge values
        ("unit_price", _log_type(schema.TRANSACTION_ITEMS, "unit_price")),
    ]
)
# The log format: what a line may hold. Timestamps are parsed after reading so that one
# bad value rejects its transaction, not the whole parse.
LOG_SCHEMA = pa.schema(
    [
        ("transaction_id", _log_type(schema.TRANSACTIONS, "transaction_id")),
        ("store_id", _log_type(schema.TRANSACTIONS, "store_id")),
        ("transaction_datetime", pa.string()),
        ("payment_method", _log_type(schema.TRANSACTIONS, "payment_method")),
        ("items", pa.list_(_ITEM)),
    ]
)
_PARSE_OPTIONS = pj.ParseOptions(explicit_schema=LOG_SCHEMA, unexpected_field_behavior="ignore")

TRANSACTIONS_WITH_DT = schema.TRANSACTIONS.append(schema.PARTITION)
TRANSACTION_ITEMS_WITH_DT = schema.TRANSACTION_ITEMS.append(schema.PARTITION)


@dataclass(frozen=True)
class Reject:
    """A record (or, with no line_number, a whole file) kept out of the lake, and why."""

    reason: str
    line_number: int | None = None  # 1-based line in the source file
    transaction_id: str | None = None
    raw: str | None = None  # the line as received, cut at RAW_TEXT_LIMIT characters

    def to_dict(self) -> dict[str, Any]:
        return {
            "line_number": self.line_number,
            "transaction_id": self.transaction_id,
            "reason": self.reason,
            "raw": self.raw,
        }


@dataclass(frozen=True)
class TransformResult:
    """Rows for both fact tables (each with its `dt` column) and the records rejected."""

    transactions: pa.Table
    transaction_items: pa.Table
    rejects: list[Reject] = field(default_factory=list)
    records_read: int = 0  # non-blank lines, i.e. transactions offered

    @property
    def file_rejected(self) -> bool:
        return any(r.line_number is None for r in self.rejects)


class _FileRejected(Exception):
    """The file cannot be read as a whole; none of it may be loaded."""


def transform(data: bytes, source_key: str, ingested_at: datetime | None = None) -> TransformResult:
    """Converts one raw log into `transactions` and `transaction_items` rows plus rejects."""
    ingested = ingested_at or datetime.now(UTC)
    try:
        text = _decoded(data)
    except _FileRejected as exc:
        return _empty(rejects=[Reject(reason=str(exc))])
    if not text.strip():
        return _empty()

    try:
        log = pj.read_json(io.BytesIO(text), _READ_OPTIONS, _PARSE_OPTIONS)
        lines: _Lines = _Lines(text, None)
        rejects: list[Reject] = []
    except pa.ArrowInvalid:
        log, lines, rejects = _read_line_by_line(text)

    datetimes = _parse_datetimes(log["transaction_datetime"])
    valid, row_rejects = _validate(log, datetimes)
    rejects += [lines.reject(log, row, reason) for row, reason in row_rejects]
    rejects.sort(key=lambda r: r.line_number or 0)
    records_read = lines.count if lines.count is not None else log.num_rows
    if valid is not None:
        log, datetimes = log.filter(valid), datetimes.filter(valid)
    transactions, items = _rows(log, datetimes, source_key, ingested)
    return TransformResult(transactions, items, rejects, records_read)


_READ_OPTIONS = pj.ReadOptions(block_size=_BLOCK_SIZE)


def _decoded(data: bytes) -> bytes:
    """Gunzips if needed and proves the text is UTF-8, or rejects the file whole."""
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise _FileRejected(f"gzip stream is corrupt or truncated: {exc}") from exc
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _FileRejected(
                f"file is not UTF-8 text: invalid byte at offset {exc.start}"
            ) from exc
    return data


def _empty(rejects: list[Reject] | None = None) -> TransformResult:
    return TransformResult(
        TRANSACTIONS_WITH_DT.empty_table(),
        TRANSACTION_ITEMS_WITH_DT.empty_table(),
        rejects or [],
        0,
    )


class _Lines:
    """Maps parsed rows back to source lines; splits the text only when a reject needs it."""

    def __init__(self, text: bytes, numbered: list[tuple[int, bytes]] | None) -> None:
        self._text = text
        self._numbered = numbered  # (line number, line) of each parsed row, in row order
        self.count: int | None = None

    def _rows(self) -> list[tuple[int, bytes]]:
        if self._numbered is None:
            self._numbered = _non_blank_lines(self._text)
        return self._numbered

    def reject(self, log: pa.Table, row: int, reason: str) -> Reject:
        number, line = self._rows()[row]
        return Reject(
            reason=reason,
            line_number=number,
            transaction_id=log["transaction_id"][row].as_py(),
            raw=_raw(line),
        )


def _non_blank_lines(text: bytes) -> list[tuple[int, bytes]]:
    # JSON whitespace only: the same lines pyarrow's reader skips.
    return [(n, line) for n, line in enumerate(text.split(b"\n"), 1) if line.strip(b" \t\r")]


def _raw(line: bytes) -> str:
    return line.decode("utf-8", errors="replace")[:RAW_TEXT_LIMIT]


T = TypeVar("T")


def _bisect(count: int, attempt: Callable[[int, int], T]) -> list[tuple[int, T | pa.ArrowInvalid]]:
    """Runs attempt(start, stop) over [0, count), halving failing ranges down to one element.

    Returns (start, result or error) per piece, in order; an error is always a single element.
    """
    pieces: list[tuple[int, T | pa.ArrowInvalid]] = []
    pending = [(0, count)]
    while pending:
        start, stop = pending.pop()
        try:
            pieces.append((start, attempt(start, stop)))
        except pa.ArrowInvalid as exc:
            if stop - start == 1:
                pieces.append((start, exc))
            else:
                middle = (start + stop) // 2
                pending += [(middle, stop), (start, middle)]
    return pieces


def _read_line_by_line(text: bytes) -> tuple[pa.Table, _Lines, list[Reject]]:
    """Slow path: parses halves of the file until each bad line stands alone and is rejected."""
    numbered = _non_blank_lines(text)

    def parse(start: int, stop: int) -> pa.Table:
        chunk = b"\n".join(line for _, line in numbered[start:stop])
        return pj.read_json(io.BytesIO(chunk), _READ_OPTIONS, _PARSE_OPTIONS)

    tables, kept, rejects = [], [], []
    for start, outcome in _bisect(len(numbered), parse):
        if isinstance(outcome, pa.Table):
            tables.append(outcome)
            kept += numbered[start : start + outcome.num_rows]
        else:
            number, line = numbered[start]
            reason, transaction_id = _explain(line, outcome)
            rejects.append(Reject(reason, number, transaction_id, _raw(line)))
    log = pa.concat_tables(tables) if tables else LOG_SCHEMA.empty_table()
    lines = _Lines(text, kept)
    lines.count = len(numbered)
    return log, lines, rejects


def _explain(line: bytes, error: pa.ArrowInvalid) -> tuple[str, str | None]:
    """Names the field that made pyarrow refuse a line, by checking it against LOG_SCHEMA."""
    try:
        record = json.loads(line, object_pairs_hook=_refuse_duplicate_keys)
    except ValueError as exc:
        return f"not valid JSON: {exc}", None
    if not isinstance(record, dict):
        return f"not a JSON object but {_json_kind(record)}", None
    transaction_id = record.get("transaction_id")
    transaction_id = transaction_id if isinstance(transaction_id, str) else None
    for name in LOG_SCHEMA.names:
        problem = _type_problem(record.get(name), LOG_SCHEMA.field(name).type, name)
        if problem:
            return problem, transaction_id
    return f"does not match the log format: {error}", transaction_id


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise ValueError(f"field {key!r} appears twice")
    return dict(pairs)


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    kinds = {str: "a string", int: "an integer", float: "a number", list: "an array"}
    return next((k for t, k in kinds.items() if isinstance(value, t)), "an object")


def _type_problem(value: object, type_: pa.DataType, path: str) -> str | None:
    """Why value cannot be read as type_, or None; null is left to the value rules."""
    if value is None:
        return None
    if pa.types.is_string(type_):
        ok, wanted = isinstance(value, str), "a string"
    elif pa.types.is_integer(type_):
        ok = isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
        wanted = "an integer"
    elif pa.types.is_decimal(type_):
        ok, wanted = _fits_decimal(value, type_), f"a number with at most {type_.scale} decimals"
        wanted += f" and {type_.precision - type_.scale} integer digits"
    elif pa.types.is_list(type_):
        if not isinstance(value, list):
            return f"{path} must be an array, got {_json_kind(value)}"
        problems = (_type_problem(v, type_.value_type, f"{path}[{i}]") for i, v in enumerate(value))
        return next((p for p in problems if p), None)
    else:  # struct
        if not isinstance(value, dict):
            return f"{path} must be an object, got {_json_kind(value)}"
        problems = (_type_problem(value.get(f.name), f.type, f"{path}.{f.name}") for f in type_)
        return next((p for p in problems if p), None)
    return None if ok else f"{path} must be {wanted}, got {json.dumps(value)[:80]}"


def _fits_decimal(value: object, type_: pa.Decimal128Type) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return False
    if not number.is_finite():
        return False
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    digits = len(number.as_tuple().digits)
    return -exponent <= type_.scale and digits + exponent <= type_.precision - type_.scale


def _parse_datetimes(strings: pa.ChunkedArray) -> pa.Array:
    """ISO-8601 with Z or an offset -> UTC milliseconds (truncated); null where it won't parse."""
    strings = strings.combine_chunks()
    try:
        parsed = pc.cast(strings, _NS_UTC)
    except pa.ArrowInvalid:
        pieces = _bisect(len(strings), lambda a, b: pc.cast(strings[a:b], _NS_UTC))
        parsed = pa.concat_arrays(
            [pa.nulls(1, _NS_UTC) if isinstance(p, pa.ArrowInvalid) else p for _, p in pieces]
        )
    return pc.cast(pc.floor_temporal(parsed, unit="millisecond"), schema.UTC_MILLIS)


def _missing(strings: pa.Array) -> pa.Array:
    return pc.or_kleene(pc.is_null(strings), pc.equal(pc.utf8_length(strings), 0))


def _first_reasons(rules: list[tuple[pa.Array, str]]) -> pa.Array | None:
    """Per row, the reason of the first rule whose mask is true; None when no row fails."""
    masks = [pc.fill_null(mask, False) for mask, _ in rules]
    if not any(pc.any(mask).as_py() for mask in masks):
        return None
    conditions = pc.make_struct(*masks, field_names=[str(i) for i in range(len(masks))])
    return pc.case_when(conditions, *[pa.scalar(reason) for _, reason in rules])


def _validate(log: pa.Table, datetimes: pa.Array) -> tuple[pa.Array | None, list[tuple[int, str]]]:
    """Applies the rejection rules; returns the keep-mask (None: keep all) and (row, reason)s."""
    items = _column(log, "items")
    lengths = pc.list_value_length(items)
    item_reasons = _first_reasons(_item_rules(pc.list_flatten(items)))
    totals = _total_cents(items)
    reasons = _first_reasons(
        [
            (_missing(_column(log, "transaction_id")), "transaction_id is missing or empty"),
            (_missing(_column(log, "store_id")), "store_id is missing or empty"),
            (pc.is_null(_column(log, "transaction_datetime")), "transaction_datetime is missing"),
            (
                pc.is_null(datetimes),
                "transaction_datetime is not an ISO-8601 timestamp with Z or an offset",
            ),
            (_missing(_column(log, "payment_method")), "payment_method is missing or empty"),
            (pc.is_null(items), "items is missing"),
            (pc.equal(lengths, 0), "items is empty"),
            (pc.greater(lengths, MAX_ITEMS), f"items has more than {MAX_ITEMS} lines"),
            (_has_bad_item(items, item_reasons), ""),  # reason filled from the item below
            (pc.greater(totals, MAX_TOTAL_CENTS), "total_amount exceeds decimal(12,2)"),
        ]
    )
    if reasons is None:
        return None, []
    bad_item = _first_bad_item_per_row(items, item_reasons)
    rejected = pc.indices_nonzero(pc.is_valid(reasons)).to_pylist()
    row_reasons = reasons.take(rejected).to_pylist()
    return pc.is_null(reasons), [
        (row, reason or bad_item[row]) for row, reason in zip(rejected, row_reasons, strict=True)
    ]


def _item_rules(flat: pa.Array) -> list[tuple[pa.Array, str]]:
    quantity = pc.struct_field(flat, "quantity")
    price = pc.struct_field(flat, "unit_price")
    return [
        (pc.is_null(flat), "is not an object"),
        (_missing(pc.struct_field(flat, "sku_id")), "sku_id is missing or empty"),
        (pc.is_null(quantity), "quantity is missing"),
        (pc.less_equal(quantity, 0), "quantity must be positive"),
        (pc.greater(quantity, MAX_QUANTITY), f"quantity must be at most {MAX_QUANTITY}"),
        (pc.is_null(price), "unit_price is missing"),
        (pc.less(price, pa.scalar(0, price.type)), "unit_price must not be negative"),
    ]


def _basket_bounds(items: pa.ListArray) -> tuple[pa.Array, pa.Array]:
    """Start and end of each basket in the flattened items (as list_flatten lays them out)."""
    lengths = pc.cast(pc.fill_null(pc.list_value_length(items), 0), pa.int64())
    ends = pc.cumulative_sum(lengths)
    return pc.subtract(ends, lengths), ends


def _per_basket_sum(items: pa.ListArray, per_item: pa.Array) -> pa.Array:
    """Sums an int64 value over each basket's items, by differences of one running sum."""
    starts, ends = _basket_bounds(items)
    running = pc.cumulative_sum(pa.concat_arrays([pa.array([0], pa.int64()), per_item]))
    # Wrap-around in the running sum cancels in the difference: each basket stays exact.
    return pc.subtract(running.take(ends), running.take(starts))


def _ordinals(count: int) -> pa.Array:
    """0, 1, ..., count - 1 as int64, without a Python loop."""
    return pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), count)), 1)


def _has_bad_item(items: pa.ListArray, item_reasons: pa.Array | None) -> pa.Array:
    if item_reasons is None:
        return pa.repeat(pa.scalar(False), len(items))
    bad = pc.cast(pc.is_valid(item_reasons), pa.int64())
    return pc.greater(_per_basket_sum(items, bad), 0)


def _first_bad_item_per_row(items: pa.ListArray, item_reasons: pa.Array | None) -> dict[int, str]:
    if item_reasons is None:
        return {}
    bad_items = pc.indices_nonzero(pc.is_valid(item_reasons))
    rows = pc.list_parent_indices(items).take(bad_items).to_pylist()
    starts = _basket_bounds(items)[0].take(rows).to_pylist()
    reasons = item_reasons.take(bad_items).to_pylist()
    found: dict[int, str] = {}
    for index, row, start, reason in zip(bad_items.to_pylist(), rows, starts, reasons, strict=True):
        found.setdefault(row, f"items[{index - start}].{reason}")
    return found


def _line_cents(flat: pa.Array) -> pa.Array:
    quantity = pc.fill_null(pc.struct_field(flat, "quantity"), 0)
    quantity = pc.if_else(pc.greater(quantity, MAX_QUANTITY), 0, quantity)  # rejected anyway
    return pc.multiply(
        quantity, pc.fill_null(money.to_cents(pc.struct_field(flat, "unit_price")), 0)
    )


def _total_cents(items: pa.ListArray) -> pa.Array:
    return _per_basket_sum(items, _line_cents(pc.list_flatten(items)))


def _rows(
    log: pa.Table, datetimes: pa.Array, source_key: str, ingested_at: datetime
) -> tuple[pa.Table, pa.Table]:
    items = _column(log, "items")
    flat = pc.list_flatten(items)
    parents = pc.list_parent_indices(items)
    dt = pc.cast(datetimes, pa.date32())
    transaction_id = _column(log, "transaction_id")
    ingested = pa.scalar(ingested_at.replace(microsecond=ingested_at.microsecond // 1000 * 1000))

    def lineage(count: int) -> list[pa.Array]:
        return [
            pa.repeat(pa.scalar(source_key), count),
            pa.repeat(pc.cast(ingested, schema.UTC_MILLIS), count),
        ]

    transactions = pa.Table.from_arrays(
        [
            transaction_id,
            _column(log, "store_id"),
            datetimes,
            _column(log, "payment_method"),
            money.from_cents(_total_cents(items), schema.MONEY_TOTAL),
            *lineage(len(log)),
            dt,
        ],
        schema=TRANSACTIONS_WITH_DT,
    )
    basket_start = _basket_bounds(items)[0].take(parents)
    line_number = pc.add(pc.subtract(_ordinals(len(flat)), basket_start), 1)
    transaction_items = pa.Table.from_arrays(
        [
            transaction_id.take(parents),
            pc.cast(line_number, pa.int32()),
            pc.struct_field(flat, "sku_id"),
            pc.cast(pc.struct_field(flat, "quantity"), pa.int32()),
            pc.struct_field(flat, "unit_price"),
            *lineage(len(flat)),
            dt.take(parents),
        ],
        schema=TRANSACTION_ITEMS_WITH_DT,
    )
    return transactions, transaction_items


def _column(log: pa.Table, name: str) -> pa.Array:
    return log[name].combine_chunks()
