"""Arrow arrays in one piece: Arrow's compute kernels return a ChunkedArray for a table's column
and an Array for an array, and the code that reads buffers or compares neighbours needs one."""

import pyarrow as pa


def contiguous(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The values as one Array: a ChunkedArray's chunks combined (a copy only if there are
    several), an Array as it is."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
