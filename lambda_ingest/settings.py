"""The Lambda's settings from its environment (the template sets them), each with its default."""

import os
from collections.abc import Mapping

MAX_SOURCE_BYTES_VARIABLE = "MAX_SOURCE_BYTES"
# The largest raw log read, after gunzip. One handler ingesting a 254 MiB log peaked at 892 MiB
# RSS (3x the source on top of the interpreter; README, "Security"): the default fits 1.5 GB.
DEFAULT_MAX_SOURCE_BYTES = 256 * 2**20


def max_source_bytes(environ: Mapping[str, str] | None = None) -> int:
    """MAX_SOURCE_BYTES, or its default; a bad value is a configuration error, said at once."""
    raw = (os.environ if environ is None else environ).get(MAX_SOURCE_BYTES_VARIABLE, "")
    if not raw.strip():
        return DEFAULT_MAX_SOURCE_BYTES
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{MAX_SOURCE_BYTES_VARIABLE}={raw!r}: expected a positive byte count")
    return value
