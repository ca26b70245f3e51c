import gzip
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from lake_contract import schema
from lambda_ingest import transform as transform_module
from lambda_ingest.transform import (
    MAX_ITEMS,
    MAX_QUANTITY,
    RAW_TEXT_LIMIT,
    TRANSACTION_ITEMS_WITH_DT,
    TRANSACTIONS_WITH_DT,
    transform,
)
from tests.factories import GOOD, ndjson, record

INGESTED = datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=UTC)


def run(data: bytes, key: str = "raw/incoming/dt=2026-03-01/a.ndjson"):
    return transform(data, key, INGESTED)


def test_good_record_becomes_one_transaction_and_its_lines():
    result = run(ndjson(GOOD))

    assert result.rejects == []
    assert result.records_read == 1
    assert result.transactions.to_pylist() == [
        {
            "transaction_id": "T-1",
            "store_id": "STORE0001",
            "transaction_datetime": datetime(2026, 3, 1, 10, 15, 30, 250000, tzinfo=UTC),
            "payment_method": "credit_card",
            "total_amount": Decimal("16.98"),  # 2 x 3.49 + 1 x 10
            "source_key": "raw/incoming/dt=2026-03-01/a.ndjson",
            "ingested_at": datetime(2026, 3, 2, 8, 0, 0, 123000, tzinfo=UTC),
            "dt": date(2026, 3, 1),
        }
    ]
    items = result.transaction_items.to_pylist()
    assert [(i["line_number"], i["sku_id"], i["quantity"], i["unit_price"]) for i in items] == [
        (1, "SKU00001", 2, Decimal("3.49")),
        (2, "SKU00002", 1, Decimal("10.00")),
    ]
    assert {i["transaction_id"] for i in items} == {"T-1"}
    assert {i["dt"] for i in items} == {date(2026, 3, 1)}


def test_output_schemas_are_the_schema_modules_plus_dt():
    result = run(ndjson(GOOD))

    assert result.transactions.schema == TRANSACTIONS_WITH_DT
    assert result.transaction_items.schema == TRANSACTION_ITEMS_WITH_DT
    for produced, table in ((TRANSACTIONS_WITH_DT, schema.TRANSACTIONS),
                            (TRANSACTION_ITEMS_WITH_DT, schema.TRANSACTION_ITEMS)):  # fmt: skip
        assert produced.names == [*table.names, "dt"]
        for field in table:
            type_ = produced.field(field.name).type
            value_type = type_.value_type if pa.types.is_dictionary(type_) else type_
            assert value_type == field.type, field.name


@pytest.mark.parametrize(
    ("stamp", "utc", "day"),
    [
        ("2026-03-01T23:30:00-05:00", datetime(2026, 3, 2, 4, 30, tzinfo=UTC), date(2026, 3, 2)),
        ("2026-03-02T00:30:00+01:00", datetime(2026, 3, 1, 23, 30, tzinfo=UTC), date(2026, 3, 1)),
        ("2026-03-01T12:00:00+0530", datetime(2026, 3, 1, 6, 30, tzinfo=UTC), date(2026, 3, 1)),
        ("2026-03-01T23:59:59.999Z", datetime(2026, 3, 1, 23, 59, 59, 999000, tzinfo=UTC),
         date(2026, 3, 1)),
        # finer than milliseconds is truncated, never rounded into the next day
        ("2026-03-01T23:59:59.999999Z", datetime(2026, 3, 1, 23, 59, 59, 999000, tzinfo=UTC),
         date(2026, 3, 1)),
    ],
)  # fmt: skip
def test_offsets_are_stored_in_utc_and_dt_is_the_utc_date(stamp, utc, day):
    result = run(ndjson(record(transaction_datetime=stamp)))

    row = result.transactions.to_pylist()[0]
    assert (row["transaction_datetime"], row["dt"]) == (utc, day)
    assert {i["dt"] for i in result.transaction_items.to_pylist()} == {day}


def _item(**changes):
    item = {"sku_id": "SKU00009", "quantity": 1, "unit_price": 1.5}
    item.update(changes)
    return {k: v for k, v in item.items() if v is not ...}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object but an array"),
        ('"just a string"', "not a JSON object but a string"),
        ('{"transaction_id": "x", "transaction_id": "y"}', "appears twice"),
        ({k: v for k, v in GOOD.items() if k != "transaction_id"}, "transaction_id is missing"),
        ({k: v for k, v in GOOD.items() if k != "store_id"}, "store_id is missing"),
        ({k: v for k, v in GOOD.items() if k != "payment_method"}, "payment_method is missing"),
        ({k: v for k, v in GOOD.items() if k != "transaction_datetime"},
         "transaction_datetime is missing"),
        ({k: v for k, v in GOOD.items() if k != "items"}, "items is missing"),
        (record(transaction_id=""), "transaction_id is missing or empty"),
        (record(transaction_id=42), "transaction_id must be a string, got 42"),
        (record(store_id=["STORE0001"]), "store_id must be a string"),
        (record(payment_method=None), "payment_method is missing"),
        (record(transaction_datetime="yesterday"), "transaction_datetime is not an ISO-8601"),
        (record(transaction_datetime="2026-02-30T10:00:00Z"), "transaction_datetime is not"),
        (record(transaction_datetime="2026-03-01T10:00:00"), "transaction_datetime is not"),
        (record(transaction_datetime=1772355600), "transaction_datetime must be a string"),
        (record(items=[]), "items is empty"),
        (record(items={"sku_id": "SKU1"}), "items must be an array, got an object"),
        (record(items=[None]), "items[0].is not an object"),
        (record(items=["SKU1"]), "items[0] must be an object, got a string"),
        (record(items=[_item(), _item(sku_id=...)]), "items[1].sku_id is missing"),
        (record(items=[_item(sku_id="")]), "items[0].sku_id is missing or empty"),
        (record(items=[_item(quantity=...)]), "items[0].quantity is missing"),
        (record(items=[_item(quantity=0)]), "items[0].quantity must be positive"),
        (record(items=[_item(quantity=-3)]), "items[0].quantity must be positive"),
        (record(items=[_item(quantity=1.5)]), "items[0].quantity must be an integer"),
        (record(items=[_item(quantity=2.0)]), "items[0].quantity must be an integer"),
        (record(items=[_item(quantity="2")]), "items[0].quantity must be an integer"),
        (record(items=[_item(quantity=True)]), "items[0].quantity must be an integer"),
        (record(items=[_item(quantity=MAX_QUANTITY + 1)]),
         f"items[0].quantity must be at most {MAX_QUANTITY}"),
        (record(items=[_item(quantity=2**40)]), "items[0].quantity must be an integer"),
        (record(items=[_item(unit_price=...)]), "items[0].unit_price is missing"),
        (record(items=[_item(unit_price=-0.01)]), "items[0].unit_price must not be negative"),
        (record(items=[_item(unit_price=1.005)]), "items[0].unit_price must be a number with"),
        (record(items=[_item(unit_price=123456789.5)]),
         "items[0].unit_price must be at most 99999999.99"),
        (record(items=[_item(unit_price=1234567890.12)]), "items[0].unit_price must be a number"),
        (record(items=[_item(unit_price="cheap")]), "items[0].unit_price must be a number"),
        (record(items=[_item() for _ in range(MAX_ITEMS + 1)]),
         f"items has more than {MAX_ITEMS} lines"),
        (record(items=[_item(quantity=MAX_QUANTITY, unit_price=99_999_999.99)] * 2),
         "total_amount must be at most 9999999999.99"),
    ],
)  # fmt: skip
def test_each_rule_rejects_the_record_with_a_reason_naming_the_field(bad, reason):
    before, after = record("good-before"), record("good-after")

    result = run(ndjson(before, bad, after))

    assert [r.line_number for r in result.rejects] == [2]
    assert reason in result.rejects[0].reason
    raw = bad if isinstance(bad, str) else ndjson(bad).decode().strip()
    assert result.rejects[0].raw == raw[:RAW_TEXT_LIMIT]
    # the good records on either side are never held back by the bad one
    assert result.transactions["transaction_id"].to_pylist() == ["good-before", "good-after"]
    assert result.transaction_items.num_rows == 4
    assert result.records_read == 3


def test_reject_keeps_the_transaction_id_when_there_is_one():
    result = run(ndjson(record("T-77", items=[]), record(transaction_id=5)))

    assert [(r.transaction_id, r.line_number) for r in result.rejects] == [("T-77", 1), (None, 2)]


def test_blank_lines_are_skipped_and_line_numbers_count_them():
    data = b"\n" + ndjson(GOOD) + b"   \n\r\n" + ndjson(record("T-2", items=[]))

    result = run(data)

    assert result.records_read == 2
    assert result.transactions.num_rows == 1
    assert [r.line_number for r in result.rejects] == [5]


def test_unknown_fields_are_ignored():
    extra = record(loyalty={"card": "L-1", "points": [1, 2]}, note="hi")
    extra["items"][0]["discount"] = {"code": "X"}

    result = run(ndjson(extra))

    assert result.rejects == []
    assert result.transaction_items.num_rows == 2


def test_prices_as_strings_and_integers_are_exact_decimals():
    data = ndjson(record(items=[_item(unit_price="0.10", quantity=3), _item(unit_price=7)]))

    result = run(data)

    assert result.transactions["total_amount"].to_pylist() == [Decimal("7.30")]


def test_empty_and_blank_files_yield_nothing_and_reject_nothing():
    for data in (b"", b"\n\n  \n"):
        result = run(data)
        assert (result.records_read, result.rejects) == (0, [])
        assert result.transactions.num_rows == result.transaction_items.num_rows == 0


def test_gzip_is_read_like_plain_text():
    data = ndjson(GOOD, record("T-2"))

    plain, zipped = run(data), run(gzip.compress(data))

    assert zipped.transactions.to_pylist() == plain.transactions.to_pylist()
    assert zipped.transaction_items.to_pylist() == plain.transaction_items.to_pylist()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            gzip.compress(ndjson(GOOD, record("T-2")), mtime=0)[:-12],
            "gzip stream is corrupt or truncated",
        ),
        (b"\x1f\x8b" + b"garbage" * 10, "gzip stream is corrupt or truncated"),
        (
            ndjson(GOOD) + b'{"transaction_id": "caf\xe9"}\n',
            "not UTF-8 text: invalid byte at offset",
        ),
        (gzip.compress(ndjson(GOOD) + b"\xff\xfe\n", mtime=0), "not UTF-8 text"),
    ],
    # Fixed ids: xdist's workers must collect the same names (a gzip header holds the time).
    ids=["truncated gzip", "garbage after the gzip magic", "not utf-8", "gzip of not utf-8"],
)
def test_a_damaged_file_is_rejected_whole_and_loads_nothing(data, reason):
    result = run(data)

    assert result.file_rejected
    assert len(result.rejects) == 1
    assert result.rejects[0].line_number is None
    assert reason in result.rejects[0].reason
    assert result.transactions.num_rows == result.transaction_items.num_rows == 0


def test_very_long_raw_lines_are_cut_in_the_reject():
    long_line = '{"transaction_id": "' + "x" * (RAW_TEXT_LIMIT * 2) + '", "items": 5}'

    result = run(ndjson(long_line))

    assert len(result.rejects[0].raw) == RAW_TEXT_LIMIT


@pytest.mark.parametrize("parallel_rows", [10**9, 1], ids=["one thread", "halves in parallel"])
def test_many_bad_lines_among_many_good_ones_are_each_found(monkeypatch, parallel_rows):
    monkeypatch.setattr(transform_module, "_PARALLEL_ROWS", parallel_rows)
    records = [record(f"T-{i}") for i in range(2000)]
    bad_lines = {7, 500, 501, 1500, 1999}
    for i in bad_lines:
        records[i] = "oops" if i % 2 else record(f"T-{i}", items=[_item(quantity=0.5)])
    records[1500] = record("T-1500", items=[])  # a value rule, in the second half

    result = run(ndjson(*records))

    assert sorted(r.line_number - 1 for r in result.rejects) == sorted(bad_lines)
    assert result.transactions.num_rows == 2000 - len(bad_lines)
    expected = [f"T-{i}" for i in range(2000) if i not in bad_lines]
    assert result.transactions["transaction_id"].to_pylist() == expected
    assert result.transaction_items.num_rows == 2 * len(expected)
    by_line = {r.line_number: r.transaction_id for r in result.rejects}
    assert (by_line[8], by_line[501], by_line[1501]) == (None, "T-500", "T-1500")


@pytest.mark.parametrize("parallel_rows", [10**9, 1], ids=["one thread", "halves in parallel"])
def test_every_line_carries_its_baskets_store(monkeypatch, parallel_rows):
    monkeypatch.setattr(transform_module, "_PARALLEL_ROWS", parallel_rows)
    stores = ["STORE0001", "STORE0002", "STORE0003"]
    records = [record(f"T-{i}", store_id=stores[i * 7 % 3],
                      items=[_item()] * (1 + i % 4)) for i in range(300)]  # fmt: skip
    records[40] = "oops"  # a rejected line between baskets shifts nothing

    result = run(ndjson(*records))

    store_of = dict(zip(result.transactions["transaction_id"].to_pylist(),
                        result.transactions["store_id"].to_pylist(), strict=True))  # fmt: skip
    items = result.transaction_items.select(["transaction_id", "store_id"]).to_pylist()
    assert len(items) == sum(1 + i % 4 for i in range(300) if i != 40)
    assert all(i["store_id"] == store_of[i["transaction_id"]] for i in items)
    assert {i["store_id"] for i in items} == set(stores)
