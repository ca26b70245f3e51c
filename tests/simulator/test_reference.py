import re

import pytest

from lake_contract import schema
from simulator import catalog
from simulator.reference import entity_ids, generate_skus, generate_supermarkets, id_width


@pytest.mark.parametrize(
    ("count", "width"), [(1, 4), (5, 4), (9999, 4), (12_000, 5), (100_000, 6), (10_000_000, 8)]
)
def test_id_width_grows_with_the_count(count, width):
    assert id_width(count) == width


def test_ids_look_like_the_reference_systems():
    assert entity_ids("STORE", 5).to_pylist() == [f"STORE000{i}" for i in range(1, 6)]
    skus = entity_ids("SKU", 12_000).to_pylist()
    assert skus[7066] == "SKU07067"
    assert skus[-1] == "SKU12000"
    assert len(set(entity_ids("SKU", 100_000).to_pylist())) == 100_000


def test_defaults_are_five_stores_and_twelve_thousand_skus():
    stores, skus = generate_supermarkets(), generate_skus()

    assert (stores.num_rows, skus.num_rows) == (5, 12_000)
    assert stores.schema == schema.SUPERMARKETS
    assert skus.schema == schema.SKUS


def test_same_seed_same_data_other_seed_other_data():
    assert generate_skus(500, seed=3).equals(generate_skus(500, seed=3))
    assert not generate_skus(500, seed=3).equals(generate_skus(500, seed=4))
    assert generate_supermarkets(50, seed=3).equals(generate_supermarkets(50, seed=3))


def test_growing_the_catalogue_keeps_the_stores():
    assert generate_supermarkets(7, seed=1).equals(generate_supermarkets(7, seed=1))


def test_skus_look_like_a_shelf():
    skus = generate_skus(5_000, seed=1).to_pylist()

    for sku in skus:
        low, high = catalog.CATEGORIES[sku["category"]][1]
        cents = int(sku["price"] * 100)
        assert cents % 10 == 9, sku  # 3.49, 12.99
        assert max(49, low - 10) <= cents <= high + 10, sku
        assert re.fullmatch(r"[A-Z][\w&' ]+ .+", sku["product_name"]), sku
    categories = {s["category"] for s in skus}
    assert categories == set(catalog.CATEGORIES)


def test_thousands_of_stores_and_a_million_skus_on_request():
    stores = generate_supermarkets(3_000, seed=2)
    skus = generate_skus(1_000_000, seed=2)

    assert stores["store_id"][-1].as_py() == "STORE3000"
    assert skus["sku_id"][-1].as_py() == "SKU1000000"
    assert skus["price"].null_count == 0


@pytest.mark.parametrize("count", [0, -1])
def test_no_stores_or_skus_is_an_error(count):
    with pytest.raises(ValueError, match="at least one"):
        generate_supermarkets(count)
    with pytest.raises(ValueError, match="at least one"):
        generate_skus(count)
