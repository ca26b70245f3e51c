"""What a table's rows add up to: counts, sums in integer cents, and the multiset of row keys.

The multiset digest is a sum of per-row hashes modulo 2**64, so it does not depend on row order
or file boundaries, a dropped or duplicated row changes it, and fingerprints can be subtracted:
what a compaction keeps is exactly what it read minus what it superseded.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake_contract import money
from lake_contract.arrays import contiguous

_MASK = (1 << 64) - 1
_SLICE_ROWS = 131_072

# The columns whose sums must survive any rewrite of a table, in integer cents or units.
SUMS: dict[str, tuple[str, ...]] = {
    "transactions": ("total_amount_cents",),
    "transaction_items": ("quantity", "line_amount_cents"),
}
# The key that names one row: a transaction, or one line of a basket.
ROW_KEY: dict[str, tuple[str, ...]] = {
    "transactions": ("transaction_id",),
    "transaction_items": ("transaction_id", "line_number"),
}


@dataclass(frozen=True)
class Fingerprint:
    rows: int = 0
    sums: dict[str, int] = field(default_factory=dict)
    keys: int = 0  # additive multiset hash of the row keys, mod 2**64

    def __add__(self, other: "Fingerprint") -> "Fingerprint":
        names = self.sums.keys() | other.sums.keys()
        sums = {n: self.sums.get(n, 0) + other.sums.get(n, 0) for n in sorted(names)}
        return Fingerprint(self.rows + other.rows, sums, (self.keys + other.keys) & _MASK)

    def __sub__(self, other: "Fingerprint") -> "Fingerprint":
        negated = Fingerprint(
            -other.rows, {n: -v for n, v in other.sums.items()}, (-other.keys) & _MASK
        )
        return self + negated

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, **self.sums, "keys_multiset": f"{self.keys:016x}"}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Fingerprint":
        sums = {k: int(v) for k, v in data.items() if k not in ("rows", "keys_multiset")}
        return cls(int(data["rows"]), sums, int(data["keys_multiset"], 16))


def fingerprint(table_name: str, rows: pa.Table) -> Fingerprint:
    """The fingerprint of `rows`, a slice of the lake table `table_name` (any order, any chunks)."""
    if rows.num_rows > _SLICE_ROWS:  # bounds the hashing's temporary arrays
        slices = (rows.slice(i, _SLICE_ROWS) for i in range(0, rows.num_rows, _SLICE_ROWS))
        return sum((fingerprint(table_name, s) for s in slices), Fingerprint())
    if rows.num_rows == 0:
        return Fingerprint(0, dict.fromkeys(SUMS[table_name], 0), 0)
    if table_name == "transactions":
        sums = {"total_amount_cents": _sum(money.to_cents(rows["total_amount"]))}
    else:
        quantity = pc.cast(rows["quantity"], pa.int64())
        line_cents = pc.multiply_checked(quantity, money.to_cents(rows["unit_price"]))
        sums = {"quantity": _sum(quantity), "line_amount_cents": _sum(line_cents)}
    hashes = _string_hashes(rows["transaction_id"])
    if "line_number" in ROW_KEY[table_name]:
        lines = rows["line_number"].to_numpy().astype(np.uint64)
        hashes = _mix(hashes ^ _mix(lines + np.uint64(0x2545F4914F6CDD1D)))
    return Fingerprint(rows.num_rows, sums, int(hashes.sum(dtype=np.uint64)))


def _sum(values: pa.ChunkedArray | pa.Array) -> int:
    total = pc.sum(values).as_py()
    return int(total or 0)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _string_hashes(values: pa.ChunkedArray) -> np.ndarray:
    """One 64-bit hash per string, computed over Arrow's buffers without a Python loop."""
    strings = contiguous(pc.cast(values, pa.large_string()))
    count = len(strings)
    offsets = np.frombuffer(strings.buffers()[1], np.int64, count + 1, strings.offset * 8)
    lengths = np.diff(offsets)
    if strings.buffers()[2] is None or offsets[-1] == offsets[0]:
        return _mix(lengths.astype(np.uint64))
    data = np.frombuffer(strings.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
    starts = offsets[:-1] - offsets[0]
    position = np.arange(len(data), dtype=np.int64) - np.repeat(starts, lengths)
    # A weight per position keeps "ab" and "ba" apart; +1 keeps a zero byte from vanishing.
    terms = (data.astype(np.uint64) + np.uint64(1)) * _mix(
        position.astype(np.uint64) + np.uint64(1)
    )
    padded = np.append(terms, np.uint64(0))  # reduceat needs every start to be a valid index
    sums = np.add.reduceat(padded, np.minimum(starts, len(terms)))
    sums = np.where(lengths > 0, sums, np.uint64(0))
    return _mix(sums ^ _mix(lengths.astype(np.uint64)))
