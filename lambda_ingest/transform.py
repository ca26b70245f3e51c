"""Transaction logs (newline-delimited JSON, plain or gzip) -> lake rows and rejects.

Pure: bytes in, Arrow tables and rejects out, no I/O. The happy path is one multi-threaded
`pyarrow.json.read_json` with an explicit schema followed by vectorised checks; only a file
whose fast parse fails is split, by bisection, to isolate the lines that break it.
"""

import functools
import itertools
import json
import struct
import sys
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from lake_contract import money, schema
from lake_contract.arrays import contiguous
from lake_contract.quarantine import Reject

# Sanity bounds: they keep integer-cent arithmetic far from int64 overflow
# (10_000 lines x 10_000 units x 99_999_999.99 < 2**63 cents) and money within its decimals.
MAX_ITEMS = 10_000
MAX_QUANTITY = 10_000
# Arrow's JSON reader checks a decimal's digits as written, not after rescaling: 123456789.5
# passes as decimal(10,2) yet needs 11 digits. The bounds are therefore checked on cents.
MAX_UNIT_PRICE_CENTS = 10**schema.MONEY_UNIT.precision - 1
MAX_TOTAL_CENTS = 10**schema.MONEY_TOTAL.precision - 1
RAW_TEXT_LIMIT = 64 * 1024  # longest raw line kept in a reject

_GZIP_MAGIC = b"\x1f\x8b"
_JSON_WHITESPACE = b" \t\r\n"
# Bytes per parse block: the fast path cuts the text into pieces of about this size at line
# ends, each one Arrow block; a longer line (a huge unknown field) makes its piece longer.
_BLOCK_SIZE = 1 << 20
_NULL_TOKEN = b"null"
_NS_UTC = pa.timestamp("ns", tz="UTC")


def _log_type(table: pa.Schema, name: str) -> pa.DataType:
    return table.field(name).type


_ITEM = pa.struct(
    [
        ("sku_id", _log_type(schema.TRANSACTION_ITEMS, "sku_id")),
        ("quantity", _log_type(schema.TRANSACTION_ITEMS, "quantity")),
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


def _read_options(size: int, longest_line: int = 0) -> pj.ReadOptions:
    """Blocks that hold the longest line; threads only for more than one block, so a small
    file parses on its own thread instead of queueing behind a large one in Arrow's pool."""
    block_size = max(_BLOCK_SIZE, longest_line + 1)
    return pj.ReadOptions(use_threads=size > block_size, block_size=block_size)


LINEAGE_COLUMNS = ("source_key", "ingested_at")


def _in_memory(table: pa.Schema, encoded: tuple[str, ...] = LINEAGE_COLUMNS) -> pa.Schema:
    """A table's schema plus dt, with the per-file constant lineage columns (and any other
    column named in `encoded`) dictionary-encoded.

    Parquet stores them as plain strings and timestamps (lake_contract.parquet), the lake's types.
    """
    for name in encoded:
        field_ = table.field(name)
        dictionary = field_.with_type(pa.dictionary(pa.int32(), field_.type))
        table = table.set(table.get_field_index(name), dictionary)
    return table.append(schema.PARTITION)


TRANSACTIONS_WITH_DT = _in_memory(schema.TRANSACTIONS)
# A line's store repeats its basket's: a few stores, so indices into them, not a copy per line.
TRANSACTION_ITEMS_WITH_DT = _in_memory(schema.TRANSACTION_ITEMS, (*LINEAGE_COLUMNS, "store_id"))


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


def transform(
    data: bytes | pa.Buffer,
    source_key: str,
    ingested_at: datetime | None = None,
    max_bytes: int | None = None,
) -> TransformResult:
    """Converts one raw log into `transactions` and `transaction_items` rows plus rejects.

    data may be a pyarrow Buffer (e.g. a memory-mapped file), which is never copied. A file
    whose text (after gunzip) is over max_bytes is rejected whole, and gunzip stops at the bound.
    """
    ingested = ingested_at or datetime.now(UTC)
    try:
        text = _decoded(data, max_bytes)
    except _FileRejected as exc:
        return rejected_file(str(exc))
    if _blank(text):
        return _empty()

    try:
        log = _parse(text)
        lines = _Lines(text)
        rejects: list[Reject] = []
    except pa.ArrowInvalid:
        log, lines, rejects = _read_line_by_line(text)
    converted = _Conversion.of(log, source_key, ingested)
    if converted.rejects_any and not lines.one_row_per_line(log.num_rows):
        # Arrow read a line as several objects (or several lines as one): only reading line by
        # line can number the rejects right, and reject the lines that break the format.
        log, lines, rejects = _read_line_by_line(text)
        converted = _Conversion.of(log, source_key, ingested)
    for start, part in zip(converted.starts, converted.parts, strict=True):
        rejects += [lines.reject(log, start + row, reason) for row, reason in part.rejected]
    transactions, items = converted.transactions, converted.transaction_items
    if converted.repeats:
        transactions, items, repeat_rejects = _drop_repeats(converted, log, lines)
        rejects += repeat_rejects
    rejects.sort(key=lambda r: r.line_number or 0)
    records_read = lines.count if lines.count is not None else log.num_rows
    return TransformResult(transactions, items, rejects, records_read)


class _NullFirst(pa.ArrowInvalid):
    """A block would start with a top-level null, on which Arrow's JSON reader segfaults
    (pyarrow 26, apache/arrow#47409): such text is read line by line instead."""


def _parse(text: pa.Buffer) -> pa.Table:
    """The whole log parsed in pieces of about _BLOCK_SIZE cut at line ends, each one Arrow
    block, on both cores (a small file on the caller's thread). Cutting the pieces here, not in
    Arrow, says where every block starts, so none may start with null, and a line of any length
    fits its piece."""
    bounds = [0]
    while bounds[-1] < text.size:
        bounds.append(_line_end(text, bounds[-1] + _BLOCK_SIZE))
    if any(_leads_with_null(text, start) for start in bounds[:-1]):
        raise _NullFirst("a piece starts with null")
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    if len(pieces) == 1:
        return _parse_piece(pieces[0])
    return pa.concat_tables(_pool().map(_parse_piece, pieces))


def _parse_piece(piece: pa.Buffer) -> pa.Table:
    options = pj.ReadOptions(use_threads=False, block_size=piece.size + 1)  # one block
    return pj.read_json(pa.BufferReader(piece), options, _PARSE_OPTIONS)


def _line_end(text: pa.Buffer, position: int) -> int:
    """Just past the first newline at or after position (or the end of the text)."""
    step = 4096  # lines are ~500 bytes; a longer one doubles the window it is looked for in
    while position < text.size:
        found = text[position : position + step].to_pybytes().find(b"\n")
        if found >= 0:
            return position + found + 1
        position, step = position + step, step * 2
    return text.size


def _leads_with_null(text: pa.Buffer, start: int) -> bool:
    """Whether the first JSON value at start is null; unsure (4 KiB of whitespace) counts."""
    head = text[start : start + 4096].to_pybytes().lstrip(_JSON_WHITESPACE)
    return head.startswith(_NULL_TOKEN) or (not head and start + 4096 < text.size)


def rejected_file(reason: str) -> TransformResult:
    """The result for a source rejected as a unit: no rows, one reject without a line."""
    return _empty(rejects=[Reject(reason=reason)])


def oversized_reason(size: int, max_bytes: int) -> str:
    return f"file is {size:,} bytes, over the {max_bytes:,}-byte bound on a source file"


_PARALLEL_ROWS = 50_000  # below this, a second thread costs more than it saves


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="transform")


class _Converted(NamedTuple):
    """One slice of the log converted: both tables' rows and what was rejected."""

    transactions: pa.Table
    transaction_items: pa.Table
    rejected: list[tuple[int, str]]  # (row of the slice, reason)
    kept: pa.Array | None  # rows of the slice that became transactions; None: every row


@dataclass(frozen=True)
class _Conversion:
    """The whole log converted, piece by piece, and the ids that repeat across it."""

    starts: list[int]  # each piece's first log row
    parts: list[_Converted]
    transactions: pa.Table
    transaction_items: pa.Table
    repeats: list[tuple[int, int]]  # (transaction row, row of the id's first occurrence)

    @classmethod
    def of(cls, log: pa.Table, source_key: str, ingested: datetime) -> "_Conversion":
        """In one piece, or in halves on both cores for a large file (the kernels release the
        GIL)."""
        halves = 2 if log.num_rows >= _PARALLEL_ROWS else 1
        bounds = [log.num_rows * i // halves for i in range(halves + 1)]
        pieces = [log.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
        if halves == 1:  # on the caller's thread: never queued behind another file's halves
            parts = [_convert(pieces[0], source_key, ingested)]
        else:
            parts = list(_pool().map(lambda piece: _convert(piece, source_key, ingested), pieces))
        transactions = pa.concat_tables([part.transactions for part in parts])
        items = pa.concat_tables([part.transaction_items for part in parts])
        repeats = _repeats(transactions["transaction_id"])
        return cls(bounds[:-1], parts, transactions, items, repeats)

    @property
    def rejects_any(self) -> bool:
        return bool(self.repeats) or any(part.rejected for part in self.parts)

    def log_rows(self) -> pa.Array:
        """The log row of each transaction row."""
        rows = [
            pa.array(range(start, start + part.transactions.num_rows), pa.int64())
            if part.kept is None
            else pc.add(pc.cast(part.kept, pa.int64()), start)
            for start, part in zip(self.starts, self.parts, strict=True)
        ]
        return pa.concat_arrays(rows)


def _convert(log: pa.Table, source_key: str, ingested: datetime) -> _Converted:
    """Parsed log rows -> both tables' rows, and (row, reason) for each rejected row."""
    datetimes = _parse_datetimes(log["transaction_datetime"])
    flat = pc.list_flatten(log["items"])
    price_cents = money.to_cents(pc.struct_field(flat, "unit_price"))
    totals = _total_cents(log["items"], flat, price_cents)
    valid, row_rejects = _validate(log, flat, price_cents, datetimes, totals)
    kept = None
    if valid is not None:
        kept = pc.indices_nonzero(valid)
        log, datetimes, totals = log.filter(valid), datetimes.filter(valid), totals.filter(valid)
        flat = pc.list_flatten(log["items"])
    transactions, items = _rows(log, flat, datetimes, totals, source_key, ingested)
    return _Converted(transactions, items, row_rejects, kept)


def _repeats(transaction_ids: pa.ChunkedArray) -> list[tuple[int, int]]:
    """(row, row of its first occurrence) for each transaction row whose id came before.

    Logs list ids in increasing order (both producers zero-pad their sequence), which proves
    there is no repeat in one comparison pass; only other files pay for a hash grouping.
    """
    ids = contiguous(transaction_ids)
    if len(ids) < 2 or pc.all(pc.less(ids[:-1], ids[1:])).as_py():
        return []
    counts = pa.table({"id": ids}).group_by("id").aggregate([("id", "count")])
    repeated = counts.filter(pc.greater(counts["id_count"], 1))["id"]
    if len(repeated) == 0:
        return []
    rows = pc.indices_nonzero(pc.is_in(ids, value_set=repeated)).to_pylist()
    first: dict[str, int] = {}
    found = []
    for row, transaction_id in zip(rows, ids.take(rows).to_pylist(), strict=True):
        if transaction_id in first:
            found.append((row, first[transaction_id]))
        else:
            first[transaction_id] = row
    return found


def _drop_repeats(
    converted: _Conversion, log: pa.Table, lines: "_Lines"
) -> tuple[pa.Table, pa.Table, list[Reject]]:
    """Keeps the first valid occurrence of each id; rejects the others, naming its line."""
    transactions, items = converted.transactions, converted.transaction_items
    log_rows = converted.log_rows()
    keep = [True] * transactions.num_rows
    rejects = []
    for row, first in converted.repeats:
        keep[row] = False
        first_line = lines.number(log_rows[first].as_py())
        transaction_id = json.dumps(transactions["transaction_id"][row].as_py())[:80]
        reason = (
            f"transaction_id {transaction_id} repeats line {first_line}: an id is unique, "
            f"so its first valid occurrence (line {first_line}) is kept"
        )
        rejects.append(lines.reject(log, log_rows[row].as_py(), reason))
    mask = pa.array(keep)
    # Each kept basket has at least one line and numbers them from 1: a 1 starts the next one.
    starts = pc.cast(pc.equal(items["line_number"], 1), pa.int64())
    basket = pc.subtract(pc.cumulative_sum(starts), 1)
    return transactions.filter(mask), items.filter(mask.take(basket)), rejects


def _decoded(data: bytes | pa.Buffer, max_bytes: int | None = None) -> pa.Buffer:
    """Gunzips if needed and proves the text is UTF-8, or rejects the file whole."""
    buffer = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    if buffer[:2].to_pybytes() == _GZIP_MAGIC:
        buffer = pa.py_buffer(_gunzip(memoryview(buffer), max_bytes))
    elif max_bytes is not None and buffer.size > max_bytes:
        raise _FileRejected(oversized_reason(buffer.size, max_bytes))
    # One large_binary value over the whole buffer: casting it to text validates the UTF-8
    # with Arrow's vectorised checker, without copying or decoding.
    offsets = pa.py_buffer(struct.pack("<qq", 0, buffer.size))
    whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, buffer])
    try:
        whole.cast(pa.large_string())
    except pa.ArrowInvalid:
        try:
            bytes(buffer).decode("utf-8")
        except UnicodeDecodeError as exc:
            where = f"invalid byte at offset {exc.start}"
            raise _FileRejected(f"file is not UTF-8 text: {where}") from exc
        raise  # Arrow refused text that Python accepts: a bug worth surfacing
    return buffer


def _gunzip(data: memoryview | bytes, max_bytes: int | None) -> bytes:
    """Every gzip member, concatenated as gzip.decompress does, but never more than max_bytes
    of output: a small file that inflates past the bound (a zip bomb) is refused, not held."""
    out: list[bytes] = []
    total = 0
    while data:
        member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header and CRC checked
        room = 0 if max_bytes is None else max_bytes - total + 1  # 0: no limit
        try:
            out.append(member.decompress(data, room))
        except zlib.error as exc:
            raise _FileRejected(f"gzip stream is corrupt or truncated: {exc}") from exc
        total += len(out[-1])
        if max_bytes is not None and (total > max_bytes or member.unconsumed_tail):
            raise _FileRejected(
                f"file inflates to more than {max_bytes:,} bytes, over the bound on a source file"
            )
        if not member.eof:
            raise _FileRejected("gzip stream is corrupt or truncated: it ends inside a member")
        data = member.unused_data.lstrip(b"\x00")  # padding between members, as gzip allows
    return b"".join(out)


def _blank(text: pa.Buffer) -> bool:
    """Nothing but JSON whitespace; a file with content answers from its first 64 KB."""
    if text[: 1 << 16].to_pybytes().strip(_JSON_WHITESPACE):
        return False
    return not text.to_pybytes().strip(_JSON_WHITESPACE)


def _empty(rejects: list[Reject] | None = None) -> TransformResult:
    return TransformResult(
        TRANSACTIONS_WITH_DT.empty_table(),
        TRANSACTION_ITEMS_WITH_DT.empty_table(),
        rejects or [],
        0,
    )


class _Lines:
    """Maps parsed rows back to source lines; splits the text only when a reject needs it."""

    def __init__(
        self,
        text: pa.Buffer,
        numbered: list[tuple[int, bytes]] | None = None,
        count: int | None = None,
    ) -> None:
        self._text = text
        self._numbered = numbered  # (line number, line) of each parsed row, in row order
        self.count = count  # non-blank lines, when known before parsing (the slow path)

    def _rows(self) -> list[tuple[int, bytes]]:
        if self._numbered is None:
            self._numbered = _non_blank_lines(self._text)
        return self._numbered

    def one_row_per_line(self, rows: int) -> bool:
        """Whether the parsed rows are the non-blank lines, one each, so rows map to lines."""
        return len(self._rows()) == rows

    def number(self, row: int) -> int:
        return self._rows()[row][0]

    def reject(self, log: pa.Table, row: int, reason: str) -> Reject:
        number, line = self._rows()[row]
        if line.lstrip(_JSON_WHITESPACE).startswith(_NULL_TOKEN):  # read as a row of nulls
            reason = _explain(line)[0]  # the reason the slow path gives it
        return Reject(
            reason=reason,
            line_number=number,
            transaction_id=log["transaction_id"][row].as_py(),
            raw=_raw(line),
        )


def _non_blank_lines(text: pa.Buffer) -> list[tuple[int, bytes]]:
    # JSON whitespace only: the same lines pyarrow's reader skips.
    lines = text.to_pybytes().split(b"\n")
    return [(n, line) for n, line in enumerate(lines, 1) if line.strip(_JSON_WHITESPACE)]


def _raw(line: bytes) -> str:
    return line.decode("utf-8", errors="replace")[:RAW_TEXT_LIMIT]


T = TypeVar("T")


def _bisect(count: int, attempt: Callable[[int, int], T]) -> list[tuple[int, T | pa.ArrowInvalid]]:
    """Runs attempt(start, stop) over [0, count), halving failing ranges down to one element.

    Returns (start, result or error) per piece, in order; an error is always a single element.
    """
    pieces: list[tuple[int, T | pa.ArrowInvalid]] = []
    pending = [(0, count)] if count else []  # nothing to parse: nothing to halve either
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


class _NotOneObject(pa.ArrowInvalid):
    """Lines that Arrow read as a different number of objects: bisected like a parse error."""


def _read_line_by_line(text: pa.Buffer) -> tuple[pa.Table, _Lines, list[Reject]]:
    """Slow path: parses halves of the file until each bad line stands alone and is rejected."""
    every_line = _non_blank_lines(text)
    # Never given to Arrow (a block starting with null crashes it): rejected here, by _explain.
    null_first = [
        (n, line) for n, line in every_line if line.lstrip(_JSON_WHITESPACE).startswith(_NULL_TOKEN)
    ]
    numbered = [
        (n, line)
        for n, line in every_line
        if not line.lstrip(_JSON_WHITESPACE).startswith(_NULL_TOKEN)
    ]
    longest = max((len(line) for _, line in numbered), default=0)

    def parse(start: int, stop: int) -> pa.Table:
        chunk = b"\n".join(line for _, line in numbered[start:stop])
        table = pj.read_json(
            pa.BufferReader(chunk), _read_options(len(chunk), longest), _PARSE_OPTIONS
        )
        if table.num_rows != stop - start:
            raise _NotOneObject(f"{table.num_rows} objects in {stop - start} lines")
        return table

    tables, kept, rejects = [], [], []
    for number, line in null_first:
        reason, transaction_id = _explain(line)
        rejects.append(Reject(reason, number, transaction_id, _raw(line)))
    for start, outcome in _bisect(len(numbered), parse):
        if isinstance(outcome, pa.Table):
            tables.append(outcome)
            kept += numbered[start : start + outcome.num_rows]
        else:
            number, line = numbered[start]
            reason, transaction_id = _explain(line)
            rejects.append(Reject(reason, number, transaction_id, _raw(line)))
    log = pa.concat_tables(tables) if tables else LOG_SCHEMA.empty_table()
    return log, _Lines(text, kept, count=len(every_line)), rejects


# The reason of a line Arrow refused for a cause no other rule names; never Arrow's own text,
# which describes its parser, not the log format.
UNREADABLE = "not one JSON object of the log format"


def _explain(line: bytes) -> tuple[str, str | None]:
    """Names the rule a line that pyarrow refused breaks, by checking it against LOG_SCHEMA."""
    try:
        record = json.loads(
            line, object_pairs_hook=_refuse_duplicate_keys, parse_constant=_refuse_constant
        )
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {_json_error(exc)}", None
    except ValueError as exc:  # a key twice, NaN or Infinity
        return f"not valid JSON: {exc}", None
    except RecursionError:
        return f"not valid JSON, or nested over {sys.getrecursionlimit():,} levels deep", None
    if not isinstance(record, dict):
        return f"not a JSON object but {_json_kind(record)}", None
    transaction_id = record.get("transaction_id")
    transaction_id = transaction_id if isinstance(transaction_id, str) else None
    if _has_lone_surrogate(record):
        return "not valid JSON: a \\u escape is half a surrogate pair", None
    for name in LOG_SCHEMA.names:
        problem = _type_problem(record.get(name), LOG_SCHEMA.field(name).type, name)
        if problem:
            return problem, transaction_id
    return UNREADABLE, transaction_id


def _json_error(error: json.JSONDecodeError) -> str:
    if error.msg == "Extra data":  # a line is one object: "{...}{...}", or a pretty-printed piece
        return f"more follows the first value at column {error.colno} (one object a line)"
    return f"{error.msg.removesuffix(' at')} at column {error.colno}"


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise ValueError(f"field {json.dumps(key)[:80]} appears twice")
    return dict(pairs)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _has_lone_surrogate(record: object) -> bool:
    """Python reads a lone \\udXXX escape into a string no UTF-8 can hold; JSON readers refuse
    it. Walked with a stack: a record may nest as deep as the parser allowed."""
    pending = [record]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(value, list):
            pending += value
        elif isinstance(value, dict):
            pending += [*value.keys(), *value.values()]
    return False


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    kinds = {str: "a string", int: "an integer", float: "a number", list: "an array",
             type(None): "null"}  # fmt: skip
    return next((k for t, k in kinds.items() if isinstance(value, t)), "an object")


def _type_problem(value: object, type_: pa.DataType, path: str) -> str | None:
    """Why value cannot be read as type_, or None; null is left to the value rules."""
    if value is None:
        return None
    if pa.types.is_string(type_):
        ok, wanted = isinstance(value, str), "a string"
    elif pa.types.is_integer(type_):
        bound = 2 ** (type_.bit_width - 1)
        ok = isinstance(value, int) and not isinstance(value, bool) and -bound <= value < bound
        wanted = f"an integer of at most {type_.bit_width} bits"
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
    try:
        return pc.cast(parsed, schema.UTC_MILLIS)  # exact unless finer than milliseconds
    except pa.ArrowInvalid:
        return pc.cast(pc.floor_temporal(parsed, unit="millisecond"), schema.UTC_MILLIS)


Column = pa.Array | pa.ChunkedArray


class _Check(NamedTuple):
    """A rejection test: a cheap aggregate that says whether any row can fail, and the mask."""

    could_fail: Callable[[Column], bool]
    mask: Callable[[Column], Column]


def _extreme(values: Column, which: str) -> Any:
    return pc.min_max(values)[which].as_py()


_NULL = _Check(lambda a: a.null_count > 0, pc.is_null)
_MISSING = _Check(
    lambda a: a.null_count > 0 or pc.any(pc.equal(a, "")).as_py() is True,
    lambda a: pc.or_kleene(pc.is_null(a), pc.equal(a, "")),
)


def _below(limit: int) -> _Check:
    def could_fail(values: Column) -> bool:
        low = _extreme(values, "min")
        return low is not None and low < limit

    def mask(values: Column) -> Column:
        bound = pa.scalar(limit, values.type) if pa.types.is_decimal(values.type) else limit
        return pc.less(values, bound)

    return _Check(could_fail, mask)


def _above(limit: int) -> _Check:
    def could_fail(values: Column) -> bool:
        high = _extreme(values, "max")
        return high is not None and high > limit

    return _Check(could_fail, lambda values: pc.greater(values, limit))


def _first_reasons(rules: list[tuple[str, Column, _Check]]) -> pa.Array | None:
    """Per row, the reason of the first failing rule (null if none); None when no row fails.

    Clean data costs one aggregate per rule; masks are built only for rules that can fail.
    """
    failing = [
        (reason, check.mask(values)) for reason, values, check in rules if check.could_fail(values)
    ]
    if not failing:
        return None
    masks = [contiguous(pc.fill_null(mask, False)) for _, mask in failing]
    conditions = pc.make_struct(*masks, field_names=[str(i) for i in range(len(masks))])
    return pc.case_when(conditions, *[pa.scalar(reason) for reason, _ in failing])


_SEE_ITEM = ""  # placeholder reason: replaced by the first bad item's own reason


def _validate(
    log: pa.Table, flat: Column, price_cents: Column, datetimes: pa.Array, totals: pa.Array
) -> tuple[pa.Array | None, list[tuple[int, str]]]:
    """Applies the rejection rules; returns the keep-mask (None: keep all) and (row, reason)s."""
    items = log["items"]
    lengths = pc.list_value_length(items)
    item_reasons = _first_reasons(
        [
            ("is not an object", flat, _NULL),
            ("sku_id is missing or empty", pc.struct_field(flat, "sku_id"), _MISSING),
            ("quantity is missing", pc.struct_field(flat, "quantity"), _NULL),
            ("quantity must be positive", pc.struct_field(flat, "quantity"), _below(1)),
            (
                f"quantity must be at most {MAX_QUANTITY}",
                pc.struct_field(flat, "quantity"),
                _above(MAX_QUANTITY),
            ),
            ("unit_price is missing", pc.struct_field(flat, "unit_price"), _NULL),
            ("unit_price must not be negative", price_cents, _below(0)),
            (
                f"unit_price must be at most {_dollars(MAX_UNIT_PRICE_CENTS)}",
                price_cents,
                _above(MAX_UNIT_PRICE_CENTS),
            ),
        ]
    )
    bad_items = (
        pa.nulls(len(totals), pa.int64())
        if item_reasons is None
        else _per_basket_sum(items, pc.cast(pc.is_valid(item_reasons), pa.int64()))
    )
    reasons = _first_reasons(
        [
            ("transaction_id is missing or empty", log["transaction_id"], _MISSING),
            ("store_id is missing or empty", log["store_id"], _MISSING),
            ("transaction_datetime is missing", log["transaction_datetime"], _NULL),
            (
                "transaction_datetime is not an ISO-8601 timestamp with Z or an offset",
                datetimes,
                _NULL,
            ),
            ("payment_method is missing or empty", log["payment_method"], _MISSING),
            ("items is missing", items, _NULL),
            ("items is empty", lengths, _below(1)),
            (f"items has more than {MAX_ITEMS} lines", lengths, _above(MAX_ITEMS)),
            (_SEE_ITEM, bad_items, _above(0)),
            (
                f"total_amount must be at most {_dollars(MAX_TOTAL_CENTS)}",
                totals,
                _above(MAX_TOTAL_CENTS),
            ),
        ]
    )
    if reasons is None:
        return None, []
    bad_item = _first_bad_item_per_row(items, item_reasons)
    rejected = pc.indices_nonzero(pc.is_valid(reasons))
    row_reasons = reasons.take(rejected).to_pylist()
    return pc.is_null(reasons), [
        (row, reason or bad_item[row])
        for row, reason in zip(rejected.to_pylist(), row_reasons, strict=True)
    ]


def _basket_bounds(items: Column) -> tuple[pa.Array, pa.Array]:
    """Start and end of each basket in the flattened items (as list_flatten lays them out)."""
    lengths = pc.cast(contiguous(pc.fill_null(pc.list_value_length(items), 0)), pa.int64())
    ends = pc.cumulative_sum(lengths)
    return pc.subtract(ends, lengths), ends


def _per_basket_sum(items: Column, per_item: Column) -> pa.Array:
    """Sums an int64 value over each basket's items, by differences of one running sum."""
    starts, ends = _basket_bounds(items)
    chunks = per_item.chunks if isinstance(per_item, pa.ChunkedArray) else [per_item]
    running = pc.cumulative_sum(pa.chunked_array([pa.array([0], pa.int64()), *chunks]))
    # Wrap-around in the running sum cancels in the difference: each basket stays exact.
    return contiguous(pc.subtract(running.take(ends), running.take(starts)))


def _first_bad_item_per_row(items: Column, item_reasons: pa.Array | None) -> dict[int, str]:
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


def _dollars(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _total_cents(items: Column, flat: Column, price_cents: Column) -> pa.Array:
    """Per basket, the sum of quantity x unit_price in cents (missing or absurd lines count 0)."""
    quantity = pc.cast(pc.fill_null(pc.struct_field(flat, "quantity"), 0), pa.int64())
    if _above(MAX_QUANTITY).could_fail(quantity):  # rejected anyway; keeps int64 from overflow
        quantity = pc.if_else(pc.greater(quantity, MAX_QUANTITY), 0, quantity)
    return _per_basket_sum(items, pc.multiply(quantity, pc.fill_null(price_cents, 0)))


def _constant(value: pa.Scalar, count: int) -> pa.DictionaryArray:
    """One value repeated: a dictionary of one entry, so 3M rows cost 12 MB of zeros, not copies."""
    indices = pa.repeat(pa.scalar(0, pa.int32()), count)
    return pa.DictionaryArray.from_arrays(indices, pa.array([value.as_py()], value.type))


def _dictionary(values: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    """Strings as a dictionary: repeating one per line costs an index, not a copy."""
    return contiguous(pc.dictionary_encode(values))


def _rows(
    log: pa.Table,
    flat: Column,
    datetimes: pa.Array,
    totals: pa.Array,
    source_key: str,
    ingested_at: datetime,
) -> tuple[pa.Table, pa.Table]:
    items = log["items"]
    parents = pc.list_parent_indices(items)
    dt = pc.cast(datetimes, pa.date32())
    transaction_id = contiguous(log["transaction_id"])
    ingested = pa.scalar(ingested_at.replace(microsecond=ingested_at.microsecond // 1000 * 1000))

    def lineage(count: int) -> list[pa.Array]:
        return [
            _constant(pa.scalar(source_key), count),
            _constant(pc.cast(ingested, schema.UTC_MILLIS), count),
        ]

    transactions = pa.Table.from_arrays(
        [
            transaction_id,
            log["store_id"],
            datetimes,
            log["payment_method"],
            money.from_cents(totals, schema.MONEY_TOTAL),
            *lineage(len(log)),
            dt,
        ],
        schema=TRANSACTIONS_WITH_DT,
    )
    basket_start = _basket_bounds(items)[0].take(parents)
    ordinals = pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), len(flat)))
    transaction_items = pa.Table.from_arrays(
        [
            transaction_id.take(parents),
            _dictionary(log["store_id"]).take(parents),
            pc.cast(pc.subtract(ordinals, basket_start), pa.int32()),
            pc.struct_field(flat, "sku_id"),
            pc.struct_field(flat, "quantity"),
            pc.struct_field(flat, "unit_price"),
            *lineage(len(flat)),
            dt.take(parents),
        ],
        schema=TRANSACTION_ITEMS_WITH_DT,
    )
    return transactions, transaction_items
