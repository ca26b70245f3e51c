from datetime import date

from lake_contract import layout


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


def test_audit_keys_sort_by_finish_time_and_give_it_back():
    day = date(2026, 3, 1)
    ms = 1772409600123
    earlier = layout.audit_key(ms - 1, day, "raw/incoming/b.ndjson")
    later = layout.audit_key(ms, day, "raw/incoming/a.ndjson")

    assert earlier < later
    assert layout.audit_time_ms(later) == ms


def test_a_listing_start_sorts_before_every_key_finished_from_then_on():
    ms = 1772368200000  # 2026-03-01T12:30:00Z
    day = date(2026, 3, 1)

    start = layout.audit_listing_start(ms)

    assert start < layout.audit_key(ms, day, "raw/x.ndjson")
    assert layout.audit_key(ms - 1, day, "raw/x.ndjson") < start


def test_a_compacted_key_parses_back_and_no_source_object_is_ever_taken_for_one():
    key = layout.compacted_key("transaction_items", date(2026, 3, 1), "0123456789abcdef", 2, 3)

    assert (
        key
        == "lake/transaction_items/dt=2026-03-01/compacted-0123456789abcdef-0002-of-0003.parquet"
    )
    assert layout.parse_compacted_key(key) == ("0123456789abcdef", 2, 3)
    # sources named like compacted objects still end in their own 16-hex digest
    for name in ("compacted-0123456789abcdef-0002-of-0003.ndjson", "compacted-0001-of-0002.json",
                 "compacted-0123456789abcdef-0002-of.ndjson"):  # fmt: skip
        source_key = layout.table_key("transactions", date(2026, 3, 1), f"raw/incoming/{name}")
        assert layout.parse_compacted_key(source_key) is None
