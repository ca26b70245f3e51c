"""Shopping baskets drawn from the reference data, and their newline-delimited JSON encoding.

Both steps are vectorised (numpy draws, Arrow string kernels), so millions of baskets cost
seconds and memory stays proportional to one batch.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake_contract import money, schema
from simulator import catalog
from simulator.reference import Reference

MEAN_BASKET_SIZE = 6
MAX_BASKET_SIZE = 80

_ITEM = pa.struct(
    [("sku_id", pa.string()), ("quantity", pa.int64()), ("unit_price", schema.MONEY_UNIT)]
)
BASKETS = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("store_id", pa.string()),
        ("transaction_datetime", schema.UTC_MILLIS),
        ("payment_method", pa.string()),
        ("items", pa.list_(_ITEM)),
    ]
)


def _choice(rng: np.random.Generator, shares: dict, count: int) -> np.ndarray:
    weights = np.array(list(shares.values()), dtype=float)
    return rng.choice(len(weights), size=count, p=weights / weights.sum())


def draw_baskets(
    rng: np.random.Generator,
    reference: Reference,
    transaction_ids: pa.Array,
    datetimes_ms: np.ndarray,
) -> pa.Table:
    """One basket per id: a store, a payment method and 1..MAX_BASKET_SIZE lines at shelf price."""
    count = len(transaction_ids)
    stores = rng.choice(len(reference.store_traffic), size=count, p=reference.store_traffic)
    payments = _choice(rng, catalog.PAYMENT_METHODS, count)
    # Negative binomial: mostly small baskets, a long tail of big weekly shops.
    sizes = 1 + rng.negative_binomial(2, 2 / (2 + MEAN_BASKET_SIZE - 1), size=count)
    sizes = np.minimum(sizes, MAX_BASKET_SIZE)
    lines = int(sizes.sum())
    skus = rng.choice(len(reference.sku_popularity), size=lines, p=reference.sku_popularity)
    quantities = np.array(list(catalog.QUANTITY_SHARES))[
        _choice(rng, catalog.QUANTITY_SHARES, lines)
    ]
    items = pa.StructArray.from_arrays(
        [
            reference.sku_ids.take(pa.array(skus)),
            pa.array(quantities, pa.int64()),
            money.from_cents(pa.array(reference.sku_price_cents[skus]), schema.MONEY_UNIT),
        ],
        fields=list(_ITEM),
    )
    offsets = pa.array(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32))
    return pa.Table.from_arrays(
        [
            transaction_ids,
            reference.store_ids.take(pa.array(stores)),
            pa.array(datetimes_ms, schema.UTC_MILLIS),
            pa.array(list(catalog.PAYMENT_METHODS)).take(pa.array(payments)),
            pa.ListArray.from_arrays(offsets, items),
        ],
        schema=BASKETS,
    )


def sequence_ids(prefix: str, first: int, count: int, digits: int) -> pa.Array:
    """prefix + zero-padded first..first+count-1: unique as long as prefixes are."""
    numbers = pc.cast(pa.array(np.arange(first, first + count)), pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(numbers, digits, "0"), "")


def _decimal_text(cents: np.ndarray) -> pa.Array:
    """Non-negative cents -> "3.49"."""
    whole = pc.cast(pa.array(cents // 100), pa.string())
    fraction = pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0")
    return pc.binary_join_element_wise(whole, fraction, ".")


def _concat(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def to_ndjson(baskets: pa.Table) -> bytes:
    """The log format: one JSON object per line. Generated strings need no escaping."""
    items = baskets["items"].combine_chunks()
    flat = pc.list_flatten(items)
    item_text = _concat(
        '{"sku_id":"',
        pc.struct_field(flat, "sku_id"),
        '","quantity":',
        pc.cast(pc.struct_field(flat, "quantity"), pa.string()),
        ',"unit_price":',
        _decimal_text(money.to_cents(pc.struct_field(flat, "unit_price")).to_numpy()),
        "}",
    )
    basket_text = pc.binary_join(pa.ListArray.from_arrays(items.offsets, item_text), ",")
    when = pc.strftime(baskets["transaction_datetime"], format="%Y-%m-%dT%H:%M:%S")
    lines = _concat(
        '{"transaction_id":"',
        baskets["transaction_id"],
        '","store_id":"',
        baskets["store_id"],
        '","transaction_datetime":"',
        when,
        'Z","payment_method":"',
        baskets["payment_method"],
        '","items":[',
        basket_text,
        "]}\n",
    ).combine_chunks()
    # The lines laid end to end in the string column's data buffer are the file.
    offsets = pa.Array.from_buffers(
        pa.int32(), len(lines) + 1, [None, lines.buffers()[1]], offset=lines.offset
    )
    start, stop = offsets[0].as_py(), offsets[-1].as_py()
    return lines.buffers()[2].slice(start, stop - start).to_pybytes()
