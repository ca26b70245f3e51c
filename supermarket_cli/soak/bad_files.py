"""The soak's burst of bad files, each with what must come of it: the ids that must land, and
whether the whole file must be quarantined.

Every file is written under raw/incoming/ like a producer's, so it takes the live path: the
notification, the queue, the runtime, the handler.
"""

import gzip
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from lake_contract import layout
from simulator.baskets import draw_baskets, sequence_ids, to_ndjson
from simulator.reference import Reference

BAD_PREFIX = "soak-bad-"  # in the name of every bad file, never in a producer's
LONG_LINE_BYTES = 2 * 1024 * 1024
_BYTES_PER_RECORD = 480  # a basket's NDJSON line, about: sizes the large file


@dataclass(frozen=True)
class BadFile:
    kind: str
    key: str
    body: bytes
    lands: frozenset[str]  # ids that must be in the lake, once
    ids: frozenset[str]  # every id the file holds (lands, or quarantined)
    rejected_whole: bool = False  # the file itself is the one quarantine record


def _records(
    rng: np.random.Generator, reference: Reference, prefix: str, count: int
) -> tuple[bytes, list[str]]:
    ids = sequence_ids(prefix, 0, count, 8)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    times = np.sort(now_ms - rng.integers(0, 1000, count))
    return to_ndjson(draw_baskets(rng, reference, ids, times)), ids.to_pylist()


def _lines(body: bytes) -> list[bytes]:
    return [line for line in body.split(b"\n") if line]


def burst(
    reference: Reference, tag: str, large_bytes: int, earlier: tuple[str, bytes] | None
) -> list[BadFile]:
    """One burst of every kind the issue lists; `earlier` is a producer's file already written
    (key, body), whose first ids a further file repeats: a duplicate from another source."""
    rng = np.random.default_rng(list(tag.encode()))
    day = layout.day_prefix(layout.RAW_INCOMING, datetime.now(UTC).date())

    def key(kind: str, suffix: str = ".ndjson") -> str:
        return f"{day}{BAD_PREFIX}{tag}-{kind}{suffix}"

    def ids_of(kind: str, count: int) -> tuple[bytes, list[str]]:
        return _records(rng, reference, f"B{tag}-{kind}-", count)

    files = []
    body, ids = ids_of("gzip", 20)
    files.append(BadFile("truncated_gzip", key("truncated-gzip", ".ndjson.gz"),
                         gzip.compress(body)[:-30], frozenset(), frozenset(ids), True))  # fmt: skip
    body, ids = ids_of("utf8", 10)
    files.append(BadFile("not_utf8", key("not-utf8"), body + b"\xff\xfe\xfa not text\n",
                         frozenset(), frozenset(ids), True))  # fmt: skip
    body, ids = ids_of("garbage", 10)
    garbage = b'not json at all\n{"transaction_id": \n[1, 2, 3]\n"a string"\n'
    files.append(BadFile("garbage_lines", key("garbage"), garbage + body + garbage,
                         frozenset(ids), frozenset(ids)))  # fmt: skip
    body, ids = ids_of("long", 5)
    lines = _lines(body)
    record = json.loads(lines[0])
    record["note"] = "x" * LONG_LINE_BYTES  # an unknown field, so the record is valid
    long_body = json.dumps(record).encode() + b"\n" + b"\n".join(lines[1:]) + b"\n"
    files.append(BadFile("long_line", key("long-line"), long_body, frozenset(ids), frozenset(ids)))
    body, ids = ids_of("array", 5)
    array = b"[" + b",".join(_lines(body)) + b"]\n"
    files.append(BadFile("json_array", key("json-array"), array, frozenset(), frozenset(ids)))
    body, ids = ids_of("dup", 10)
    repeated = b"\n".join(_lines(body)[:5]) + b"\n"  # the same five ids again, later lines
    files.append(BadFile("duplicate_ids", key("duplicate-ids"), body + repeated,
                         frozenset(ids), frozenset(ids)))  # fmt: skip
    files.append(BadFile("empty", key("empty"), b"", frozenset(), frozenset()))
    body, ids = ids_of("large", max(1, large_bytes // _BYTES_PER_RECORD))
    files.append(BadFile("large", key("large"), body, frozenset(ids), frozenset(ids)))
    if earlier is not None:
        # Ids another source already landed: the earlier copy stays, this one is quarantined.
        copied = _lines(earlier[1])[:3]
        copied_ids = [json.loads(line)["transaction_id"] for line in copied]
        body, ids = ids_of("cross", 5)
        files.append(BadFile("id_from_another_source", key("cross-source"),
                             b"\n".join(copied) + b"\n" + body, frozenset(ids),
                             frozenset(ids) | frozenset(copied_ids)))  # fmt: skip
    return files
