"""Properties: valid transactions always land intact; a broken one is always rejected alone."""

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambda_ingest.transform import MAX_QUANTITY, transform

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

ids = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20)
prices = st.one_of(
    st.decimals(min_value=0, max_value=Decimal("500"), places=2),
    st.decimals(min_value=0, max_value=Decimal("99999999.99"), places=2),
)
quantities = st.one_of(st.integers(1, 12), st.integers(1, MAX_QUANTITY))
items = st.fixed_dictionaries({"sku_id": ids, "quantity": quantities, "unit_price": prices})
MAX_TOTAL = Decimal("9999999999.99")  # decimal(12,2)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)
transactions = st.fixed_dictionaries(
    {
        "transaction_id": ids,
        "store_id": ids,
        "transaction_datetime": moments,
        "payment_method": ids,
        "items": st.lists(items, min_size=1, max_size=8),
    }
).filter(lambda t: sum(i["quantity"] * i["unit_price"] for i in t["items"]) <= MAX_TOTAL)


def encode(transaction: dict) -> str:
    """A transaction as a log line; prices alternate between JSON numbers and strings."""
    stamp = transaction["transaction_datetime"].isoformat(timespec="milliseconds")
    lines = [{**item, "unit_price": f"@{n}@"} for n, item in enumerate(transaction["items"])]
    text = json.dumps({**transaction, "transaction_datetime": stamp, "items": lines})
    for n, item in enumerate(transaction["items"]):
        price = f"{item['unit_price']:.2f}"
        text = text.replace(f'"@{n}@"', price if n % 2 else f'"{price}"')  # 3.49 or "3.49"
    return text


def expected_utc(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


@PROPERTY_SETTINGS
@given(st.lists(transactions, min_size=1, max_size=20, unique_by=lambda t: t["transaction_id"]))
def test_valid_transactions_always_land_intact(batch):
    data = "\n".join(encode(t) for t in batch).encode("utf-8")

    result = transform(data, "raw/incoming/x.ndjson")

    assert result.rejects == []
    rows = result.transactions.to_pylist()
    assert len(rows) == len(batch)
    for row, original in zip(rows, batch, strict=True):
        assert row["transaction_id"] == original["transaction_id"]
        assert row["transaction_datetime"] == expected_utc(original["transaction_datetime"])
        assert row["dt"] == row["transaction_datetime"].date()
        assert row["total_amount"] == sum(
            i["quantity"] * i["unit_price"] for i in original["items"]
        )
    lines = result.transaction_items.to_pylist()
    expected_lines = [
        (t["transaction_id"], n, i["sku_id"], i["quantity"], i["unit_price"])
        for t in batch
        for n, i in enumerate(t["items"], 1)
    ]
    got = [(i["transaction_id"], i["line_number"], i["sku_id"], i["quantity"], i["unit_price"])
           for i in lines]  # fmt: skip
    assert got == expected_lines


def _drop(field):
    return lambda t: {k: v for k, v in t.items() if k != field}


def _set(field, value):
    return lambda t: {**t, field: value}


def _item_set(field, value):
    return lambda t: {**t, "items": [*t["items"][:-1], {**t["items"][-1], field: value}]}


MUTATIONS = {
    "drop transaction_id": (_drop("transaction_id"), "transaction_id"),
    "drop store_id": (_drop("store_id"), "store_id"),
    "drop datetime": (_drop("transaction_datetime"), "transaction_datetime"),
    "drop payment_method": (_drop("payment_method"), "payment_method"),
    "drop items": (_drop("items"), "items"),
    "empty id": (_set("transaction_id", ""), "transaction_id"),
    "numeric store": (_set("store_id", 7), "store_id"),
    "naive datetime": (_set("transaction_datetime", "2026-01-01T10:00:00"), "transaction_datetime"),
    "bad datetime": (_set("transaction_datetime", "not a time"), "transaction_datetime"),
    "empty items": (_set("items", []), "items"),
    "items object": (_set("items", {}), "items"),
    "zero quantity": (_item_set("quantity", 0), "quantity"),
    "negative quantity": (_item_set("quantity", -1), "quantity"),
    "fractional quantity": (_item_set("quantity", 1.5), "quantity"),
    "huge quantity": (_item_set("quantity", MAX_QUANTITY + 1), "quantity"),
    "negative price": (_item_set("unit_price", -1), "unit_price"),
    "sub-cent price": (_item_set("unit_price", 0.001), "unit_price"),
    "text price": (_item_set("unit_price", "free"), "unit_price"),
    "no sku": (_item_set("sku_id", None), "sku_id"),
}


def _as_json_ready(transaction: dict) -> dict:
    stamp = transaction["transaction_datetime"].isoformat()
    items = [{**i, "unit_price": float(i["unit_price"])} for i in transaction["items"]]
    return {**transaction, "transaction_datetime": stamp, "items": items}


@PROPERTY_SETTINGS
@given(
    st.lists(transactions, min_size=2, max_size=10, unique_by=lambda t: t["transaction_id"]),
    st.data(),
)
def test_a_mutated_transaction_is_rejected_alone_with_a_reason_naming_the_field(batch, data):
    victim = data.draw(st.integers(0, len(batch) - 1))
    name = data.draw(st.sampled_from(sorted(MUTATIONS)))
    mutate, field = MUTATIONS[name]
    lines = [encode(t) for t in batch]
    lines[victim] = json.dumps(mutate(_as_json_ready(batch[victim])))

    result = transform("\n".join(lines).encode("utf-8"), "k")

    assert [r.line_number for r in result.rejects] == [victim + 1], name
    assert field in result.rejects[0].reason, (name, result.rejects[0].reason)
    assert result.transactions.num_rows == len(batch) - 1
    kept = [t["transaction_id"] for i, t in enumerate(batch) if i != victim]
    assert result.transactions["transaction_id"].to_pylist() == kept


@PROPERTY_SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_and_every_line_is_accounted_for(noise):
    result = transform(noise, "k")

    assert result.transactions.num_rows + len(result.rejects) >= result.records_read or (
        result.file_rejected
    )
    if not result.file_rejected:
        assert result.transactions.num_rows + len(result.rejects) == result.records_read
