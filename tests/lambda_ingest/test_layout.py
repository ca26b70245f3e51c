from datetime import date

from lambda_ingest import layout


def test_output_keys_are_a_pure_function_of_the_source_key():
    key = "raw/incoming/dt=2026-03-01/till 7 café.ndjson.gz"

    first = layout.table_key("transactions", date(2026, 3, 1), key)

    assert first == layout.table_key("transactions", date(2026, 3, 1), key)
    assert first.startswith("lake/transactions/dt=2026-03-01/till_7_caf_-")
    assert first.endswith(".parquet")
    assert layout.quarantine_key(key) == layout.quarantine_key(key)


def test_distinct_sources_with_the_same_file_name_never_share_an_output():
    a = layout.source_id("raw/incoming/dt=2026-03-01/part-0.ndjson")
    b = layout.source_id("raw/incoming/dt=2026-03-02/part-0.ndjson")

    assert a != b
    assert a.startswith("part-0-") and b.startswith("part-0-")


def test_keys_are_path_safe_whatever_the_source_name():
    ugly = "raw/incoming/" + "ü ?*#%" * 40 + ".json"

    name = layout.source_id(ugly)

    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name)
    assert len(name) <= 64 + 1 + 16
