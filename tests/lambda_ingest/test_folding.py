"""The committer folds its own small files: every row stays exactly once, the day keeps few
files, and a file another writer replaced is never folded back in."""

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from lake_contract import tables
from lake_contract.tables import LakeTables
from lambda_ingest import committer, folding
from lambda_ingest.committer import commit_sources
from lambda_ingest.folding import FOLD_FILES, HeldFiles, held_file
from lambda_ingest.transform import transform
from supermarket_dagster.compaction import compact_day
from tests.factories import ndjson, record, run_at_once

DAY = date(2026, 3, 1)


def _catalog(tmp_path) -> SqlCatalog:
    """pyiceberg's SQL catalog on SQLite: it refuses a stale commit, as Glue does in AWS."""
    return SqlCatalog(
        "local", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}"
    )


def _lake(tmp_path) -> LakeTables:
    catalog = _catalog(tmp_path)
    tables.create_tables(catalog, f"file://{tmp_path}")
    return LakeTables(catalog, tables.DEFAULT_DATABASE)


def _source(key: str, count: int = 2):
    lines = [record(f"{key}-{n}", transaction_datetime=f"{DAY}T10:00:00Z") for n in range(count)]
    return key, transform(ndjson(*lines), key, datetime(2026, 3, 1, 11, tzinfo=UTC))


def _day_files(lake: LakeTables, name: str) -> list:
    return list(lake.current(name).scan().plan_files())


def _ids(lake: LakeTables, name: str) -> list[str]:
    return lake.current(name).scan().to_arrow()["transaction_id"].to_pylist()


def _expected_ids(keys: list[str], count: int = 2) -> list[str]:
    return sorted(f"{key}-{n}" for key in keys for n in range(count))


def test_batches_fold_into_few_files_and_every_row_stays_once_after_every_commit(tmp_path):
    lake = _lake(tmp_path)
    keys = []
    for batch in range(FOLD_FILES * FOLD_FILES + 5):
        keys.append(f"raw/incoming/dt={DAY}/b{batch:03d}.ndjson")
        commit_sources(lake, [_source(keys[-1])], {})
        # a reader at any commit sees each committed row once
        assert sorted(_ids(lake, "transactions")) == _expected_ids(keys), batch
    assert sorted(_ids(lake, "transaction_items")) == sorted(2 * _expected_ids(keys))
    # 105 batches: one file of 100 batches, none of 10 left, 5 batch files (without folds: 105)
    for name, per_batch in (("transactions", 2), ("transaction_items", 4)):
        counts = sorted(f.file.record_count for f in _day_files(lake, name))
        assert counts == [per_batch] * 5 + [100 * per_batch], name


def test_a_file_another_writer_replaced_is_dropped_never_folded_back_in(tmp_path):
    lake = _lake(tmp_path)
    keys = [f"raw/incoming/dt={DAY}/b{n:02d}.ndjson" for n in range(2 * FOLD_FILES + 2)]
    for key in keys[: FOLD_FILES - 1]:
        commit_sources(lake, [_source(key)], {})
    # Given the open day compacted meanwhile: the files held so far are no longer in the table
    for name in committer.COMMIT_ORDER:
        assert not compact_day(lake, name, DAY).noop
    # when more batches land, and a fold comes due first with those files in it, then later
    for number, key in enumerate(keys[FOLD_FILES - 1 :], start=FOLD_FILES - 1):
        commit_sources(lake, [_source(key)], {})
        assert sorted(_ids(lake, "transactions")) == _expected_ids(keys[: number + 1]), key
    # then the compacted rows were never folded in again: the compacted file, one fold of the
    # ten batches after it, and the three batch files since
    counts = sorted(f.file.record_count for f in _day_files(lake, "transactions"))
    assert counts == [2, 2, 2, 2 * (FOLD_FILES - 1), 2 * FOLD_FILES]
    assert sorted(_ids(lake, "transaction_items")) == sorted(2 * _expected_ids(keys))


def test_a_batch_that_replaces_a_source_folds_nothing_and_the_source_lands_once(tmp_path):
    lake = _lake(tmp_path)
    keys = [f"raw/incoming/dt={DAY}/b{n:02d}.ndjson" for n in range(FOLD_FILES)]
    for key in keys:
        commit_sources(lake, [_source(key)], {})
    # Given FOLD_FILES held files, when a batch redelivers one of their sources with new rows
    done = commit_sources(lake, [_source(keys[3], count=3), _source("raw/incoming/new")], {})

    assert done.replaced_sources == {keys[3]}
    expected = _expected_ids([k for k in keys if k != keys[3]]) + _expected_ids([keys[3]], 3)
    new = _expected_ids(["raw/incoming/new"])
    assert sorted(_ids(lake, "transactions")) == sorted(expected + new)
    # and later folds take what is still held, never the replaced file's old rows
    later = [f"raw/incoming/after-{n}" for n in range(3)]
    for key in later:
        commit_sources(lake, [_source(key)], {})
    assert sorted(_ids(lake, "transactions")) == sorted(
        expected + _expected_ids(["raw/incoming/new", *later])
    )
    assert len(_day_files(lake, "transactions")) < FOLD_FILES


def test_concurrent_folding_committers_on_an_enforcing_catalog_lose_and_double_nothing(tmp_path):
    _lake(tmp_path)

    def worker(number: int) -> None:
        lake = LakeTables(_catalog(tmp_path), tables.DEFAULT_DATABASE)  # its own connection
        for batch in range(2 * FOLD_FILES + 3):
            commit_sources(lake, [_source(f"raw/incoming/w{number}-b{batch:02d}")], {})

    # No commit lock: each fold races the others' commits, and Iceberg refuses the stale ones
    assert run_at_once(worker, 3) == []
    lake = LakeTables(_catalog(tmp_path), tables.DEFAULT_DATABASE)
    keys = [f"raw/incoming/w{n}-b{b:02d}" for n in range(3) for b in range(2 * FOLD_FILES + 3)]
    assert sorted(_ids(lake, "transactions")) == _expected_ids(keys)
    assert sorted(_ids(lake, "transaction_items")) == sorted(2 * _expected_ids(keys))
    assert len(_day_files(lake, "transactions")) < len(keys) // 2  # folds happened


# -- the bookkeeping alone -------------------------------------------------------------------


class _File:
    def __init__(self, path: str, record_count: int) -> None:
        self.file_path, self.record_count = path, record_count


def _rows(count: int, day: date = DAY) -> pa.Table:
    return pa.table({"transaction_id": [f"T{n}" for n in range(count)], "dt": [day] * count})


def _held(path: str, tier: int = 0, day: date = DAY):
    return held_file(_File(path, 1), _rows(1, day), tier, frozenset({path}))


def test_a_fold_takes_the_lowest_full_tier_oldest_files_first():
    held = HeldFiles()
    for n in range(FOLD_FILES + 2):
        held.add(_held(f"t1-{n}", tier=1))
    for n in range(FOLD_FILES - 1):
        held.add(_held(f"t0-{n}"))
    held.add(_held("other-day", day=date(2026, 3, 2)))

    fold = held.claim()

    assert [f.path for f in fold.files] == [f"t1-{n}" for n in range(FOLD_FILES)]
    assert fold.tier == 2 and fold.rows.num_rows == FOLD_FILES
    assert fold.sources == {f"t1-{n}" for n in range(FOLD_FILES)}
    assert held.claim() is None  # 2 of tier 1, 9 of tier 0 for DAY, 1 for another day
    held.add(_held("t0-last"))
    assert [f.path for f in held.claim().files] == [*(f"t0-{n}" for n in range(9)), "t0-last"]
    held.give_back(fold.files)
    held.keep_live({"t1-0", "t1-11", "other-day"})
    assert len(held) == 3


@pytest.mark.parametrize(
    ("data_file", "rows", "tier"),
    [
        (_File("big", folding.HOLD_ROWS + 1), _rows(folding.HOLD_ROWS + 1), 0),
        (_File("last tier", 1), _rows(1), folding.FOLD_TIERS),
        (_File("not these rows", 2), _rows(1), 0),
        (_File("two days", 2), pa.concat_tables([_rows(1), _rows(1, date(2026, 3, 2))]), 0),
        (_File("empty", 0), _rows(0), 0),
    ],
    ids=["too many rows", "past the last tier", "another count", "two days", "no rows"],
)
def test_a_file_that_is_never_folded_is_not_held(data_file, rows, tier):
    assert held_file(data_file, rows, tier, frozenset()) is None
