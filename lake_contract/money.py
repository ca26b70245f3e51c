"""Money as int64 cents <-> decimal(p,2), by reinterpreting the decimal's unscaled integers.

Integer cents keep the arithmetic exact and fast; decimal is what the lake stores.
"""

import pyarrow as pa
import pyarrow.compute as pc


def to_cents(money: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """decimal(p,2) -> int64 cents, without decimal arithmetic; chunk by chunk, never copied."""
    if isinstance(money, pa.ChunkedArray):
        return pa.chunked_array([to_cents(chunk) for chunk in money.chunks], pa.int64())
    if money.type.scale != 2:
        raise TypeError(f"expected a decimal with scale 2, got {money.type}")
    unscaled = pa.Array.from_buffers(
        pa.decimal128(38, 0), len(money), money.buffers(), money.null_count, money.offset
    )
    return pc.cast(unscaled, pa.int64())  # checked: a value past int64 raises, never wraps


def from_cents(cents: pa.Array, type_: pa.Decimal128Type) -> pa.Array:
    """int64 cents -> decimal(p,2), the inverse of to_cents; values must fit type_."""
    if type_.scale != 2:
        raise TypeError(f"expected a decimal with scale 2, got {type_}")
    unscaled = pc.cast(cents, pa.decimal128(19, 0))
    return pa.Array.from_buffers(type_, len(unscaled), unscaled.buffers(), unscaled.null_count)
