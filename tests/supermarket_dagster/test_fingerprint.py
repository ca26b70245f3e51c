from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lake_contract import schema
from supermarket_dagster.fingerprint import Fingerprint, fingerprint


def _items(lines):
    """transaction_items rows from (transaction_id, line_number, quantity, cents) tuples."""
    columns = list(zip(*lines, strict=True)) if lines else [[], [], [], []]
    ids, numbers, quantities, cents = columns
    return pa.table(
        {
            "transaction_id": pa.array(ids, pa.string()),
            "line_number": pa.array(numbers, pa.int32()),
            "sku_id": pa.array(["SKU0001"] * len(ids), pa.string()),
            "quantity": pa.array(quantities, pa.int32()),
            "unit_price": pa.array([Decimal(c).scaleb(-2) for c in cents], schema.MONEY_UNIT),
        }
    )


LINES = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=12),
        st.integers(1, 50),
        st.integers(1, 20),
        st.integers(0, 99_999),
    ),
    max_size=40,
)


@given(LINES, st.randoms())
def test_the_fingerprint_ignores_order_and_file_boundaries(lines, random):
    shuffled = lines[:]
    random.shuffle(shuffled)
    cut = len(shuffled) // 2

    whole = fingerprint("transaction_items", _items(lines))
    halves = fingerprint("transaction_items", _items(shuffled[:cut])) + fingerprint(
        "transaction_items", _items(shuffled[cut:])
    )

    assert whole == halves
    assert whole.rows == len(lines)
    assert whole.sums["quantity"] == sum(q for _, _, q, _ in lines)
    assert whole.sums["line_amount_cents"] == sum(q * c for _, _, q, c in lines)
    assert Fingerprint.from_json(whole.to_json()) == whole


@given(LINES.filter(bool), st.data())
def test_dropping_or_duplicating_any_row_changes_the_fingerprint(lines, data):
    row = data.draw(st.integers(0, len(lines) - 1))
    whole = fingerprint("transaction_items", _items(lines))

    dropped = fingerprint("transaction_items", _items(lines[:row] + lines[row + 1 :]))
    doubled = fingerprint("transaction_items", _items([*lines, lines[row]]))

    assert dropped.keys != whole.keys and doubled.keys != whole.keys
    assert (
        whole - dropped == doubled - whole == fingerprint("transaction_items", _items([lines[row]]))
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("ab", 1), ("ba", 1)),
        (("T-1", 12), ("T-11", 2)),
        (("x", 1), ("x", 2)),
        (("a\0", 1), ("a", 1)),
    ],
)
def test_keys_that_differ_only_in_order_or_split_hash_differently(a, b):
    first = fingerprint("transaction_items", _items([(*a, 1, 100)]))
    second = fingerprint("transaction_items", _items([(*b, 1, 100)]))

    assert first.keys != second.keys
