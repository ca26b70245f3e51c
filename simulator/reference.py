"""Stores and SKUs, generated deterministically from a seed, vectorised for millions of rows."""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake_contract import money, schema
from simulator import catalog
from simulator.defaults import DEFAULT_SEED, DEFAULT_SKUS, DEFAULT_STORES

MIN_ID_DIGITS = 4


def id_width(count: int) -> int:
    """Digits in an ID: four at least (STORE0003), more as the count grows (SKU07067 at 12,000)."""
    return max(MIN_ID_DIGITS, len(str(count)))


def entity_ids(prefix: str, count: int) -> pa.Array:
    """prefix + zero-padded 1..count, e.g. STORE0001 ... STORE0005."""
    numbers = pc.cast(pa.array(np.arange(1, count + 1)), pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(numbers, id_width(count), "0"), "")


def _rng(seed: int, stream: str) -> np.random.Generator:
    # One independent stream per entity, so adding SKUs never changes the stores.
    return np.random.default_rng([seed, *stream.encode()])


def _pick(rng: np.random.Generator, words: list[str], count: int) -> pa.Array:
    return pa.array(words).take(pa.array(rng.integers(0, len(words), count)))


def _join(*parts: pa.Array | str, separator: str = " ") -> pa.Array:
    return pc.binary_join_element_wise(*parts, separator)


def generate_supermarkets(count: int = DEFAULT_STORES, seed: int = DEFAULT_SEED) -> pa.Table:
    """`count` stores of the chain, named after a banner and a neighbourhood."""
    if count < 1:
        raise ValueError(f"need at least one store, got {count}")
    rng = _rng(seed, "supermarkets")
    names = _join(
        _pick(rng, catalog.STORE_BANNERS, count), _pick(rng, catalog.NEIGHBOURHOODS, count)
    )
    locations = _pick(rng, catalog.CITIES, count)
    return pa.Table.from_arrays(
        [entity_ids("STORE", count), names, locations], schema=schema.SUPERMARKETS
    )


def generate_skus(count: int = DEFAULT_SKUS, seed: int = DEFAULT_SEED) -> pa.Table:
    """`count` products across the catalog's categories, priced like a shelf (x.x9)."""
    if count < 1:
        raise ValueError(f"need at least one SKU, got {count}")
    rng = _rng(seed, "skus")
    categories = list(catalog.CATEGORIES)
    weights = np.array([catalog.CATEGORIES[c][0] for c in categories])
    category = rng.choice(len(categories), size=count, p=weights / weights.sum())

    def within(column: int) -> pa.Array:
        """A word from each SKU's own category list (products or sizes)."""
        lists = [catalog.CATEGORIES[c][column] for c in categories]
        starts = np.cumsum([0] + [len(words) for words in lists])[:-1]
        lengths = np.array([len(words) for words in lists])
        index = starts[category] + (rng.random(count) * lengths[category]).astype(np.int64)
        return pa.array([w for words in lists for w in words]).take(pa.array(index))

    names = _join(_pick(rng, catalog.BRANDS, count), within(2), within(3))
    low, high = (np.array([catalog.CATEGORIES[c][1][i] for c in categories]) for i in (0, 1))
    cents = np.exp(rng.uniform(np.log(low[category]), np.log(high[category])))
    cents = np.maximum(np.round(cents / 10) * 10 - 1, 49).astype(np.int64)  # 3.49, 12.99
    return pa.Table.from_arrays(
        [
            entity_ids("SKU", count),
            names,
            pa.array(categories).take(pa.array(category)),
            money.from_cents(pa.array(cents), schema.MONEY_UNIT),
        ],
        schema=schema.SKUS,
    )


@dataclass(frozen=True)
class Reference:
    """What baskets are drawn from: store ids and traffic, SKU ids, prices and popularity."""

    store_ids: pa.Array
    store_traffic: np.ndarray  # probability that a basket is rung up at each store
    sku_ids: pa.Array
    sku_price_cents: np.ndarray
    sku_popularity: np.ndarray  # probability that a basket line is each SKU


def build_reference(stores: int, skus: int, seed: int) -> Reference:
    """The stores and SKUs of generate_supermarkets/generate_skus, shaped for basket drawing."""
    rng = _rng(seed, "traffic")
    traffic = rng.lognormal(0.0, 0.5, stores)
    # Zipf-like popularity over a shuffled catalogue: a few best-sellers, a long tail.
    popularity = 1.0 / np.arange(1, skus + 1) ** 0.9
    rng.shuffle(popularity)
    sku_table = generate_skus(skus, seed)
    return Reference(
        store_ids=entity_ids("STORE", stores),
        store_traffic=traffic / traffic.sum(),
        sku_ids=sku_table["sku_id"].combine_chunks(),
        sku_price_cents=money.to_cents(sku_table["price"]).to_numpy(),
        sku_popularity=popularity / popularity.sum(),
    )
