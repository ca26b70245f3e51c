"""File tallies: what a data file's tally says is what reading its rows says; the checks' hashed
report finds each fault the exact rules find; kept tallies are read instead of their files,
taken again when damaged, and dropped with their files."""

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lake_contract import layout
from lambda_ingest.committer import commit_sources
from lambda_ingest.transform import transform
from supermarket_dagster import compaction, file_tallies, quality
from supermarket_dagster.lake_day import SourceRows
from tests.factories import ndjson, record
from tests.supermarket_dagster.test_quality import _day, _in_batches

DAY = date(2026, 3, 2)
TABLES = ("transactions", "transaction_items")
AT = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _with_sources(table: pa.Table, code: str, sources: int) -> pa.Table:
    """The rule's columns plus the tally's others: a source per block of rows, a code each."""
    rows = table.num_rows
    if code not in table.column_names:
        table = table.append_column(code, pa.array([f"C{n % 7}" for n in range(rows)]))
    keys = pa.array([f"raw/s{n * sources // rows}" for n in range(rows)])
    times = pa.array([AT + timedelta(seconds=n) for n in range(rows)], pa.timestamp("ms", tz="UTC"))
    return table.append_column("source_key", keys).append_column("ingested_at", times)


def _tallies(transactions: pa.Table, items: pa.Table, batch_rows: int = 97):
    t = file_tallies.tally("transactions", _in_batches(_with_sources(transactions, "store_id", 3),
                                                       batch_rows))  # fmt: skip
    i = file_tallies.tally("transaction_items", _in_batches(_with_sources(items, "sku_id", 5),
                                                            batch_rows))  # fmt: skip
    return t, i


def test_the_hashed_report_finds_each_fault_the_exact_rules_find():
    transactions, items = _day(seed=3)  # a total off by a cent, no lines, orphan lines
    t, i = _tallies(transactions, items)

    report = quality.hashed_report(t.baskets, i.baskets)

    assert (report.duplicates, report.mismatched, report.without_items, report.orphan_lines) == \
        (0, 1, 1, 3)  # fmt: skip
    assert report.ids_unique and not report.totals_agree


def test_the_hashed_report_passes_a_sound_day_whose_baskets_are_split_across_files():
    transactions, items = _day(seed=5)
    sound_ids = pc.invert(pc.is_in(transactions["transaction_id"], pa.array(["T0007", "T0011"])))
    transactions = transactions.filter(sound_ids)
    items = items.filter(pc.is_in(items["transaction_id"], transactions["transaction_id"]))
    # Lines sorted by basket, then cut in two files mid-basket: an id has a run in each.
    items = items.sort_by("transaction_id")
    t, first = _tallies(transactions, items.slice(0, 501))
    _, second = _tallies(transactions, items.slice(501))
    baskets = pa.concat_tables([first.baskets, second.baskets])

    report = quality.hashed_report(t.baskets, baskets)

    assert report.totals_agree and report.ids_unique
    assert pc.sum(baskets["lines"]).as_py() == items.num_rows


def test_the_hashed_report_counts_a_repeated_id_and_its_later_copy_as_without_items():
    transactions, items = _day(seed=3)
    t, i = _tallies(pa.concat_tables([transactions, transactions.slice(4, 2)]), items)

    report = quality.hashed_report(t.baskets, i.baskets)

    assert report.duplicates == 2 and not report.ids_unique and not report.totals_agree
    assert report.without_items == 1 + 2


def test_a_tally_counts_what_reading_the_rows_counts_and_survives_its_encoding():
    _, items = _day(seed=9)
    rows = _with_sources(items, "sku_id", 5)
    found = file_tallies.tally("transaction_items", _in_batches(rows, 50))

    assert found.rows == items.num_rows == pc.sum(found.baskets["lines"]).as_py()
    expected = SourceRows.of(rows)
    assert dict(zip(found.sources["source_key"].to_pylist(), found.sources["rows"].to_pylist(),
                    strict=True)) == expected.counts  # fmt: skip
    assert dict(zip(found.sources["source_key"].to_pylist(), found.sources["latest"].to_pylist(),
                    strict=True)) == expected.latest  # fmt: skip
    counted = rows.group_by("sku_id").aggregate([([], "count_all")])
    assert dict(zip(*found.codes.to_pydict().values(), strict=True)) == dict(
        zip(*counted.select(["sku_id", "count_all"]).to_pydict().values(), strict=True)
    )
    quantities, prices = items["quantity"].to_pylist(), items["unit_price"].to_pylist()
    cents = sum(q * int(p * 100) for q, p in zip(quantities, prices, strict=True))
    assert pc.sum(found.baskets["cents"]).as_py() == cents

    again = file_tallies.FileTally.decode(found.encode())
    assert again == found
    with pytest.raises(pa.ArrowInvalid):
        file_tallies.FileTally.decode(b"not a tally")


def test_unknown_codes_count_rows_and_sample_the_smallest_and_pass_a_null():
    codes = pa.table({"code": ["S1", "S9", "S8", None], "rows": [4, 2, 3, 5]},
                     schema=file_tallies.CODES)  # fmt: skip

    found = quality.unknown_codes(codes, pa.array(["S1", "S2"]))

    assert (found.count, found.sample) == (5, ["S8", "S9"])


# --- kept tallies, on a moto server ----------------------------------------------------------


def _batch(lake, name: str, count: int = 5) -> None:
    key = f"raw/incoming/dt={DAY}/{name}.ndjson"
    lines = [record(f"{name}-{n}", transaction_datetime=f"{DAY}T12:00:00Z") for n in range(count)]
    commit_sources(lake.tables(), [(key, transform(ndjson(*lines), key))], {})


def _kept(lake, table: str) -> set[str]:
    return set(lake.objects().keys(layout.day_checks_prefix(table, DAY)))


def _day_tally(lake, table: str, keep: bool = True) -> file_tallies.DayTally:
    return file_tallies.tally_day(lake.tables(), lake.objects(), table, DAY, keep)


def _same(a: file_tallies.DayTally, b: file_tallies.DayTally) -> bool:
    return (a.rows, a.files, a.sources, a.codes, a.baskets) == \
        (b.rows, b.files, b.sources, b.codes, b.baskets)  # fmt: skip


def test_large_files_tallies_are_kept_read_by_the_next_check_and_dropped_with_their_file(
    lake, monkeypatch
):
    for n in range(4):
        _batch(lake, f"till-{n}", count=4 + n)
    compaction.compact_day(lake.tables(), "transaction_items", DAY)  # one file of 22 baskets
    _batch(lake, "till-4")  # and a small one landed since
    files = list(lake.tables().current("transaction_items").scan().plan_files())
    lines = sum(task.file.record_count for task in files)
    large = max(task.file.record_count for task in files)
    monkeypatch.setattr(file_tallies, "KEPT_ROWS", large)  # the compacted file is large

    first = _day_tally(lake, "transaction_items")
    assert (first.files, first.kept, len(_kept(lake, "transaction_items"))) == (2, 0, 1)
    assert first.rows == lines
    assert not _day_tally(lake, "transactions", keep=False).kept
    assert not _kept(lake, "transactions")  # keep=False keeps nothing

    second = _day_tally(lake, "transaction_items")
    assert second.kept == 1 and _same(second, first)
    assert _same(_day_tally(lake, "transaction_items", keep=False), first)

    (key,) = _kept(lake, "transaction_items")
    lake.objects().write(key, b"damaged")
    assert _same(_day_tally(lake, "transaction_items"), first)  # taken from the file again
    assert file_tallies.FileTally.decode(lake.objects().read(key)).rows > 0  # and kept again

    for n in range(5, 8):
        _batch(lake, f"till-{n}")
    # The large file stays; the four small ones become one, too small to keep.
    compaction.compact_day(lake.tables(), "transaction_items", DAY, small_rows=large)
    third = _day_tally(lake, "transaction_items")
    assert (third.files, third.kept) == (2, 1)
    assert _kept(lake, "transaction_items") == {key}

    compaction.compact_day(lake.tables(), "transaction_items", DAY, small_rows=10**9,
                           min_files=2)  # fmt: skip
    fourth = _day_tally(lake, "transaction_items")  # one file now, the large one rewritten
    assert (fourth.files, fourth.kept) == (1, 0)
    assert key not in _kept(lake, "transaction_items")  # the replaced file's tally is gone
    assert len(_kept(lake, "transaction_items")) == 1
    assert fourth.rows == third.rows and _same(fourth, third) is False  # one file, not two
    assert fourth.source_rows().counts == third.source_rows().counts


def test_a_check_on_kept_tallies_still_names_a_duplicate_id_appended_since(lake, monkeypatch):
    import dagster as dg

    from supermarket_dagster.defs.history import checks

    for n in range(4):
        _batch(lake, f"till-{n}")
    for table in TABLES:
        compaction.compact_day(lake.tables(), table, DAY)
    monkeypatch.setattr(file_tallies, "KEPT_ROWS", 1)
    keys = [dg.AssetCheckKey(checks.TRANSACTIONS, "transaction_id_unique"),
            dg.AssetCheckKey(checks.TRANSACTIONS, "total_matches_items")]  # fmt: skip

    def results() -> dict[str, checks.DayCheck]:
        found = checks.day_results(lake, DAY, keys, rechecked=True)
        return {r.key.name: r for r in found}

    assert all(r.passed for r in results().values())
    assert _kept(lake, "transactions") and _kept(lake, "transaction_items")
    again = lake.tables().current("transactions").scan().to_arrow().slice(0, 2)
    lake.tables().current("transactions").append(again)  # a rogue commit: two ids twice

    found = results()

    unique = found["transaction_id_unique"]
    assert not unique.passed
    assert unique.metadata["duplicate_rows"] == 2
    assert unique.metadata["duplicate_sample"] == ", ".join(
        sorted(again["transaction_id"].to_pylist())
    )
    assert found["total_matches_items"].metadata["without_items_rows"] == 2


def test_housekeeping_removes_the_tallies_of_days_no_longer_checked_again(lake):
    import dagster as dg

    from supermarket_dagster.defs.maintenance.assets import lake_housekeeping

    yesterday = file_tallies.first_kept_day()
    bucket = lake.objects()
    kept = {
        (table, day): file_tallies.tally_key(table, day, f"s3://b/lake/{table}/{day}.parquet")
        for table in TABLES
        for day in (yesterday - timedelta(days=3), yesterday - timedelta(days=1), yesterday,
                    yesterday + timedelta(days=1))
    }  # fmt: skip
    bucket.write_many({key: b"tally" for key in kept.values()})

    result = dg.materialize([lake_housekeeping], resources={"lake": lake})

    assert result.success
    metadata = result.asset_materializations_for_node("lake_housekeeping")[0].metadata
    assert metadata["file_tallies_removed"].value == 2 * 2
    left = set(bucket.keys(layout.DAY_CHECKS))
    assert left == {key for (_, day), key in kept.items() if day >= yesterday}
