"""The transform on hostile input: repeated ids, lines longer than a parse block, lines that are
not one object, reasons that always name a rule, and the bound on a source's size."""

import gzip
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lambda_ingest import transform as transform_module
from lambda_ingest.transform import MAX_ITEMS, UNREADABLE, transform
from tests.factories import ndjson, record

ITEM = {"sku_id": "SKU00001", "quantity": 1, "unit_price": 1.25}
ROOT = Path(__file__).resolve().parents[2]


def ids(result):
    return result.transactions["transaction_id"].to_pylist()


def item_ids(result):
    return result.transaction_items["transaction_id"].to_pylist()


@pytest.mark.parametrize("parallel_rows", [10**9, 1], ids=["one piece", "halves in parallel"])
@pytest.mark.parametrize("order", ["ids in order", "ids out of order"])
def test_a_repeated_id_keeps_its_first_line_and_rejects_the_others_naming_it(
    monkeypatch, parallel_rows, order
):
    # given: T-2 on lines 2, 4 and 6 (with other items each time), the rest unique
    monkeypatch.setattr(transform_module, "_PARALLEL_ROWS", parallel_rows)
    names = ["T-1", "T-2", "T-3", "T-2", "T-4", "T-2"]
    if order == "ids out of order":
        names = ["T-9", "T-2", "T-3", "T-2", "T-1", "T-2"]
    records = [record(name, items=[ITEM] * (n + 1)) for n, name in enumerate(names)]

    # when
    result = transform(ndjson(*records), "k")

    # then: line 2 lands with its own two items; lines 4 and 6 are rejected, naming line 2
    assert ids(result) == [names[0], "T-2", names[2], names[4]]
    assert item_ids(result).count("T-2") == 2
    assert result.transaction_items.num_rows == 1 + 2 + 3 + 5
    assert [(r.line_number, r.transaction_id) for r in result.rejects] == [(4, "T-2"), (6, "T-2")]
    for reject in result.rejects:
        assert reject.reason.startswith('transaction_id "T-2" repeats line 2')
        assert "first valid occurrence (line 2) is kept" in reject.reason
    assert result.records_read == 6 == result.transactions.num_rows + len(result.rejects)


def test_the_first_valid_occurrence_is_kept_when_the_first_is_invalid():
    lines = [record("T-1", items=[]), record("T-1"), record("T-1")]

    result = transform(ndjson(*lines), "k")

    assert ids(result) == ["T-1"]
    assert [r.line_number for r in result.rejects] == [1, 3]
    assert result.rejects[0].reason == "items is empty"
    assert result.rejects[1].reason.startswith('transaction_id "T-1" repeats line 2')


def test_a_line_longer_than_a_parse_block_is_read_whole():
    # given: a valid record carrying a 3 MB unknown field (two block boundaries), between two
    # good ones, and a 40,000-line basket
    blob = record("T-big", note="x" * 3_000_000)
    huge_basket = record("T-huge", items=[ITEM] * 40_000)

    result = transform(ndjson(record("T-1"), blob, record("T-2"), huge_basket), "k")

    # then: unknown fields are ignored whatever their size; the basket breaks its own rule
    assert ids(result) == ["T-1", "T-big", "T-2"]
    (reject,) = result.rejects
    assert (reject.line_number, reject.reason) == (4, f"items has more than {MAX_ITEMS} lines")


def test_a_line_holding_two_objects_is_rejected_and_later_lines_keep_their_numbers():
    two = json.dumps(record("T-2")) + json.dumps(record("T-3"))
    data = ndjson(record("T-1"), two, record("T-4", store_id=""), record("T-5"))

    result = transform(data, "k")

    assert ids(result) == ["T-1", "T-5"]
    assert [r.line_number for r in result.rejects] == [2, 3]
    assert "more follows the first value" in result.rejects[0].reason
    assert result.rejects[1].reason == "store_id is missing or empty"
    assert result.rejects[1].transaction_id == "T-4"
    assert result.records_read == 4


def test_a_pretty_printed_record_is_rejected_line_by_line_and_the_rest_still_lands():
    pretty = json.dumps(record("T-2"), indent=2)
    data = ndjson(record("T-1"), pretty, record("T-3", items=[]), record("T-4"))

    result = transform(data, "k")

    pretty_lines = len(pretty.splitlines())
    assert ids(result) == ["T-1", "T-4"]
    assert result.records_read == 3 + pretty_lines
    assert [r.line_number for r in result.rejects] == [
        *range(2, 2 + pretty_lines),
        2 + pretty_lines,
    ]
    assert result.rejects[-1].reason == "items is empty"


HOSTILE_LINES = {
    "lone surrogate in a field": (json.dumps(record("a", store_id="\ud800")), "surrogate"),
    "lone surrogate in an unknown field": (json.dumps(record("a", note="\udc00")), "surrogate"),
    "Infinity price": (
        json.dumps(record("a")).replace("3.49", "Infinity"),
        "Infinity is not a JSON value",
    ),
    "control character": ('{"transaction_id": "a\x01"}', "Invalid control character at column"),
    "trailing garbage": (json.dumps(record("a")) + " ]", "more follows the first value"),
    "a key twice": ('{"store_id": "S", "store_id": "T"}', 'field "store_id" appears twice'),
    "deeply nested and broken": (
        '{"items": ' + "[" * 5000 + "]" * 5000 + ', "store_id": 1}',
        "nested over",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_LINES))
def test_a_reason_names_a_rule_and_never_passes_arrow_through(name):
    line, reason = HOSTILE_LINES[name]

    result = transform(ndjson(record("T-1"), line, record("T-2")), "k")

    assert ids(result) == ["T-1", "T-2"]
    (reject,) = result.rejects
    assert reason in reject.reason
    assert reject.reason != UNREADABLE
    for arrow_words in ("JSON parse error", "straddl", "in row", "ArrowInvalid", "block"):
        assert arrow_words not in reject.reason


BOUND = 10_000


def plain_log(size: int) -> bytes:
    """A valid log of exactly `size` bytes (its last record padded with an unknown field)."""
    head = ndjson(*[record(f"T-{n}") for n in range(10)])
    padding = size - len(head) - len(ndjson(record("T-last", pad="")))
    assert padding >= 0
    return head + ndjson(record("T-last", pad="p" * padding))


@pytest.mark.parametrize("zipped", [False, True], ids=["plain", "gzip"])
def test_a_source_at_the_bound_lands_and_one_byte_over_is_rejected_whole(zipped):
    at_bound, over = plain_log(BOUND), plain_log(BOUND + 1)
    assert (len(at_bound), len(over)) == (BOUND, BOUND + 1)
    encode = gzip.compress if zipped else bytes

    landed = transform(encode(at_bound), "k", max_bytes=BOUND)
    refused = transform(encode(over), "k", max_bytes=BOUND)

    assert landed.rejects == [] and landed.transactions.num_rows == 11
    assert refused.file_rejected and refused.transactions.num_rows == 0
    (reject,) = refused.rejects
    assert (
        f"over the {BOUND:,}-byte bound" in reject.reason or f"more than {BOUND:,}" in reject.reason
    )


def test_a_gzip_bomb_is_refused_without_inflating_it_whole(monkeypatch):
    # given: 50 MB of zeros squeezed into ~50 kB, against a 1 MB bound
    bomb = gzip.compress(b"\n" * 50_000_000)
    inflated = []
    real = transform_module.zlib.decompressobj

    class Counting:
        def __init__(self, **kwargs):
            self._inner = real(**kwargs)

        def decompress(self, data, max_length=0):
            out = self._inner.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self._inner, name)

    monkeypatch.setattr(transform_module.zlib, "decompressobj", Counting)

    result = transform(bomb, "k", max_bytes=1_000_000)

    assert result.file_rejected
    assert "inflates to more than 1,000,000 bytes" in result.rejects[0].reason
    assert sum(inflated) <= 1_000_001  # never more than the bound and a byte


def test_gzip_members_are_concatenated_as_gzip_reads_them():
    first, second = ndjson(record("T-1")), ndjson(record("T-2"))

    result = transform(gzip.compress(first) + gzip.compress(second), "k", max_bytes=10_000)

    assert ids(result) == ["T-1", "T-2"]


def test_a_small_file_does_not_wait_for_the_pool_a_large_file_is_using():
    # given: both threads of the transform's pool busy (as with a large file's halves)
    release = threading.Event()
    pool = transform_module._pool()
    busy = [pool.submit(release.wait) for _ in range(2)]
    try:
        # when: a small file is converted meanwhile, then: it finishes without the pool
        with ThreadPoolExecutor(1) as caller:
            small = caller.submit(transform, ndjson(record("T-1")), "k")
            assert ids(small.result(timeout=30)) == ["T-1"]
    finally:
        release.set()
        for task in busy:
            task.result()


# pyarrow 26's JSON reader segfaults on a block that starts with a top-level null
# (apache/arrow#47409): the transform must never hand it one. Run apart: a crash fails the test,
# not the test run.
NULL_LOGS = """
import json, sys
from lambda_ingest.transform import transform
item = {"sku_id": "K", "quantity": 1, "unit_price": 1}
good = [json.dumps({"transaction_id": f"T-{n:06d}", "store_id": "S", "payment_method": "cash",
                    "transaction_datetime": "2026-03-01T10:00:00Z", "items": [item]})
        for n in range(4000)]
logs = {
    "only null": ["null"],
    "null first": ["  null", *good[:2]],
    "null after a record": [good[0], "null"],
    "nulls heading the second block": [*good, *["null"] * 300_000, good[0].replace("T-0", "U-0")],
}
for name, lines in logs.items():
    result = transform("\\n".join(lines).encode(), "k")
    reasons = {r.reason for r in result.rejects}
    print(name, result.records_read, result.transactions.num_rows, sorted(reasons))
"""


def test_null_lines_never_reach_arrow_at_a_block_start_and_are_rejected_alike():
    done = subprocess.run(
        [sys.executable, "-c", NULL_LOGS], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr[-2000:]
    null = "['not a JSON object but null']"
    assert done.stdout.splitlines() == [
        f"only null 1 0 {null}",
        f"null first 3 2 {null}",
        f"null after a record 2 1 {null}",
        f"nulls heading the second block 304001 4001 {null}",
    ]
