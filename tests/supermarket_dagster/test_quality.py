"""The rules over a day read batch by batch give what they give over the whole day at once."""

import random
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from supermarket_dagster import quality
from supermarket_dagster.lake_day import SourceRows

MONEY = pa.decimal128(12, 2)


def _day(seed: int) -> tuple[pa.Table, pa.Table]:
    """Transactions with their item lines, shuffled, and a few faults: a total off by a cent,
    a transaction with no lines, lines whose transaction is not in the day, an unknown SKU."""
    rng = random.Random(seed)
    ids, totals, lines = [], [], []
    for n in range(300):
        tid = f"T{n:04d}"
        basket = [
            (f"SKU{rng.randrange(50):03d}", rng.randint(1, 5), Decimal(rng.randint(1, 2000)) / 100)
            for _ in range(rng.randint(1, 8))
        ]
        ids.append(tid)
        totals.append(sum(q * p for _, q, p in basket))
        lines += [(tid, *line) for line in basket]
    totals[7] += Decimal("0.01")
    lines = [line for line in lines if line[0] != "T0011"]  # T0011 has no lines left
    lines += [("GONE-1", "SKU001", 1, Decimal("1.00")), ("GONE-1", "SKU002", 2, Decimal("0.50")),
              ("GONE-2", "SKU999", 1, Decimal("2.00"))]  # fmt: skip
    rng.shuffle(lines)
    transactions = pa.table({"transaction_id": ids, "total_amount": pa.array(totals, MONEY)})
    tid, sku, quantity, price = zip(*lines, strict=True)
    items = pa.table({"transaction_id": tid, "sku_id": sku,
                      "quantity": pa.array(quantity, pa.int32()),
                      "unit_price": pa.array(price, MONEY)})  # fmt: skip
    return transactions, items


def _in_batches(table: pa.Table, rows: int) -> list[pa.RecordBatch]:
    return table.to_batches(max_chunksize=rows)


def test_line_totals_over_batches_equal_the_whole_day_and_find_each_fault():
    transactions, items = _day(seed=3)
    whole = quality.LineTotals()
    whole.add(items)
    batched = quality.LineTotals()
    for batch in _in_batches(items, 97):  # a transaction's lines fall in several batches
        batched.add(batch)

    report = batched.against(transactions)

    assert report == whole.against(transactions)
    assert (report.mismatched.count, report.mismatched.sample) == (1, ["T0007"])
    assert (report.without_items.count, report.without_items.sample) == (1, ["T0011"])
    assert (report.orphan_items.count, report.orphan_items.sample) == (3, ["GONE-1", "GONE-2"])
    assert not report.passed
    assert quality.LineTotals().against(transactions).without_items.count == 300


def test_unknown_ids_over_batches_count_every_row_and_sample_the_smallest_ids():
    ids = pa.array([f"SKU{n:03d}" for n in range(40)] * 3)
    known = pa.array([f"SKU{n:03d}" for n in range(0, 40, 2)])  # every odd SKU is unknown
    found = quality.UnknownIds("sku_id", known)
    for batch in _in_batches(pa.table({"sku_id": ids}), 13):
        found.add(batch)

    assert found.found == quality.unknown_ids(ids, known)
    assert found.found.count == 60
    assert found.found.sample == ["SKU001", "SKU003", "SKU005", "SKU007", "SKU009"]


def test_source_rows_over_batches_count_each_source_and_keep_its_latest_ingestion():
    times = pa.array([1_000_000 * n for n in range(10)], pa.timestamp("us", "UTC"))
    rows = pa.table({"source_key": ["a", "b", "a", "a", "c", "b", "a", "c", "a", "b"],
                     "ingested_at": times})  # fmt: skip
    batched = SourceRows()
    for batch in _in_batches(rows, 3):
        batched.add(batch)

    assert batched == SourceRows.of(rows)
    assert batched.counts == {"a": 5, "b": 3, "c": 2}
    assert {s: at.second for s, at in batched.latest.items()} == {"a": 8, "b": 9, "c": 7}
    assert {s: at.second for s, at in batched.earliest.items()} == {"a": 0, "b": 1, "c": 4}


def test_source_rows_name_the_sources_ingested_more_than_once():
    once, again = 1_000_000, 41_000_000  # a source's rows share its ingestion's time
    times = pa.array([once, once, once, again, once, once], pa.timestamp("us", "UTC"))
    rows = pa.table({"source_key": ["a", "a", "b", "b", "c", "c"], "ingested_at": times})

    for read in (rows, _encoded(rows, "source_key")):
        batched = SourceRows()
        for batch in _in_batches(read, 3):  # b's two ingestions in two batches
            batched.add(batch)
        assert batched.ingested_more_than_once() == {"b"}


def test_line_totals_of_lines_in_basket_order_equal_those_of_shuffled_lines():
    transactions, items = _day(seed=5)
    in_order = items.sort_by("transaction_id")  # as the transform writes them: a basket's together
    shuffled, ordered = quality.LineTotals(), quality.LineTotals()
    shuffled.add(items)
    for batch in _in_batches(in_order, 97):  # a basket's lines split across two batches
        ordered.add(batch)

    report = ordered.against(transactions)

    assert report == shuffled.against(transactions)
    assert report.mismatched.sample == ["T0007"] and report.without_items.sample == ["T0011"]
    assert report.orphan_items.count == 3


def _clean_day_in_basket_order(seed: int) -> tuple[pa.Table, pa.Table]:
    """A day as the transform writes it: every basket with its lines, in one order in both
    tables; one total off by a cent; the transactions in chunks of their own size."""
    transactions, items = _day(seed)
    items = items.filter(pc.match_substring(items["transaction_id"], "T")).sort_by("transaction_id")
    kept = transactions.filter(pc.not_equal(transactions["transaction_id"], "T0011"))
    return pa.concat_tables([kept.slice(0, 120), kept.slice(120)]), items


def test_line_totals_of_a_day_in_basket_order_compare_each_row_without_a_lookup(monkeypatch):
    transactions, items = _clean_day_in_basket_order(seed=7)
    shuffled = quality.LineTotals()
    shuffled.add(items.take(list(reversed(range(items.num_rows)))))
    expected = shuffled.against(transactions)
    ordered = quality.LineTotals()
    for batch in _in_batches(items, 97):  # baskets split across batches, merged again
        ordered.add(batch)

    def no_lookup(*args: object, **kwargs: object) -> None:
        raise AssertionError("the sums were looked up by id")

    monkeypatch.setattr(quality.pc, "index_in", no_lookup)
    report = ordered.against(transactions)

    assert report == expected
    assert (report.mismatched.count, report.mismatched.sample) == (1, ["T0007"])
    assert report.without_items.none and report.orphan_items.none


def test_line_totals_of_an_id_twice_in_a_row_count_its_second_copy_as_without_items():
    transactions, items = _clean_day_in_basket_order(seed=9)
    twice = pa.concat_tables([transactions.slice(0, 1), transactions])  # T0000 twice, together
    totals = quality.LineTotals()
    totals.add(items)

    report = totals.against(twice)

    assert (report.without_items.count, report.without_items.sample) == (1, ["T0000"])
    assert report.mismatched.sample == ["T0007"] and report.orphan_items.none


def _encoded(table: pa.Table, column: str) -> pa.Table:
    """The column dictionary-encoded, as a scan reads it from Parquet."""
    at = table.schema.get_field_index(column)
    return table.set_column(at, column, table[column].dictionary_encode())


def test_source_rows_read_dictionary_encoded_equal_those_read_plain():
    times = pa.array([1_000_000 * (n * 7 % 10) for n in range(10)], pa.timestamp("us", "UTC"))
    rows = pa.table({"source_key": ["a", "b", "a", "a", "c", "b", "a", "c", "a", "b"],
                     "ingested_at": times})  # fmt: skip
    encoded = SourceRows()
    for batch in _in_batches(_encoded(rows, "source_key"), 4):
        encoded.add(batch)

    assert encoded == SourceRows.of(rows)
    assert SourceRows.of(_encoded(rows, "source_key")) == SourceRows.of(rows)


def test_unknown_ids_read_dictionary_encoded_equal_those_read_plain():
    ids = pa.array([f"SKU{n % 40:03d}" for n in range(0, 120, 7)])
    known = pa.array([f"SKU{n:03d}" for n in range(0, 40, 2)])
    unknown = []
    for wanted in (known, ids):  # some unknown, then every one known
        plain, encoded = quality.UnknownIds("sku_id", wanted), quality.UnknownIds("sku_id", wanted)
        for batch in _in_batches(pa.table({"sku_id": ids}), 5):
            plain.add(batch)
        for batch in _in_batches(_encoded(pa.table({"sku_id": ids}), "sku_id"), 5):
            encoded.add(batch)
        assert encoded.found == plain.found
        unknown.append(encoded.found.count)
    assert unknown[0] > 0 and unknown[1] == 0
