"""64-bit hashes of strings in numpy: what a kept tally of ids holds instead of the ids
(file_tallies). numpy is not in the Lambda's package boundary, so this lives here, not in
lake_contract."""

import numpy as np
import pyarrow as pa

from lake_contract.arrays import contiguous

_PRIME = np.uint64(0x100000001B3)  # FNV-1a's 64-bit prime
_BASIS = np.uint64(0xCBF29CE484222325)


def _finish(h: np.ndarray) -> np.ndarray:
    # splitmix64's finalizer: every input bit reaches every output bit.
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def string_hashes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash of each string, eight bytes at a time in numpy (a day's 2M ids in well
    under a second), stable across processes and versions: what a kept tally of ids can hold
    instead of the ids. Not cryptographic; a null hashes as the empty string does not."""
    array = contiguous(values)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        raise TypeError(f"expected strings, got {array.type}")
    count = len(array)
    if count == 0:
        return np.empty(0, np.uint64)
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, width)[array.offset : array.offset + count + 1]
    offsets = offsets.astype(np.int64)
    lengths = np.diff(offsets)
    data = np.frombuffer(data_buffer or b"", np.uint8)
    padded = np.concatenate([data, np.zeros(8, np.uint8)])
    # Every 8-byte window of the data as one little-endian word, unaligned, without a copy.
    words = np.ndarray((len(data) + 1,), "<u8", padded, strides=(1,))
    starts = offsets[:-1]
    with np.errstate(over="ignore"):
        h = (_BASIS ^ lengths.astype(np.uint64)) * _PRIME
        for at in range(0, int(lengths.max(initial=0)), 8):
            left = np.clip(lengths - at, 0, 8).astype(np.uint64)
            word = words[np.minimum(starts + at, len(data))]
            # Only the string's own bytes: the window's bytes past its end are masked off.
            word &= np.where(left == 8, np.uint64(2**64 - 1),
                             (np.uint64(1) << (left * np.uint64(8))) - np.uint64(1))  # fmt: skip
            # A string's rounds are its own words only: its hash never depends on its neighbours.
            h = np.where(left > 0, _finish((h ^ word) * _PRIME), h)
        h = _finish(h)
    if array.null_count:
        h[np.asarray(array.is_null())] = np.uint64(0)
    return h
