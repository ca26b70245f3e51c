import gzip
import json
import os
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from lake_contract import layout, schema
from supermarket_cli.main import main
from tests.factories import ndjson, record


def _generate_history(out: Path, *flags: str) -> None:
    args = ["--transactions", "4000", "--start", "2026-03-01", "--end", "2026-03-03"]
    args += ["--skus", "700", "--file-transactions", "900", "--seed", "11", *flags]
    assert main(["generate", "history", "--out", str(out), *args]) == 0


def _lake(out: Path, table: str) -> list[dict]:
    dataset = ds.dataset(out / "lake" / table, format="parquet", partitioning="hive")
    return dataset.to_table().to_pylist()


def _expected(raw: Path) -> dict:
    """The figures the lake must hold, computed from the JSON alone."""
    transactions, items, amount, per_day = 0, 0, Decimal(0), Counter()
    for path in raw.rglob("*.ndjson*"):
        data = path.read_bytes()
        for line in (gzip.decompress(data) if path.suffix == ".gz" else data).splitlines():
            record_ = json.loads(line, parse_float=Decimal)
            transactions += 1
            items += len(record_["items"])
            amount += sum(i["quantity"] * i["unit_price"] for i in record_["items"])
            stamp = datetime.fromisoformat(record_["transaction_datetime"])
            per_day[str(stamp.astimezone(UTC).date())] += 1
    return {"transactions": transactions, "items": items, "amount": amount, "per_day": per_day}


def test_generated_history_round_trips_to_the_cent(tmp_path, capsys):
    _generate_history(tmp_path / "raw")
    expected = _expected(tmp_path / "raw")

    assert main(["convert", str(tmp_path / "raw"), "--out", str(tmp_path / "out")]) == 0

    transactions = _lake(tmp_path / "out", "transactions")
    items = _lake(tmp_path / "out", "transaction_items")
    assert len(transactions) == expected["transactions"] == 4000
    assert len(items) == expected["items"]
    assert sum(t["total_amount"] for t in transactions) == expected["amount"]
    assert sum(i["quantity"] * i["unit_price"] for i in items) == expected["amount"]
    assert Counter(str(t["dt"]) for t in transactions) == expected["per_day"]
    assert len({t["transaction_id"] for t in transactions}) == 4000
    printed = capsys.readouterr().out
    assert (
        f"read 4,000 records from {len(list((tmp_path / 'raw').rglob('*.ndjson')))} files"
        in printed
    )
    assert f"wrote 4,000 transactions and {expected['items']:,} items" in printed
    assert "quarantined 0 (0 files rejected whole)" in printed


def test_gzip_logs_convert_like_plain_ones(tmp_path):
    _generate_history(tmp_path / "plain")
    _generate_history(tmp_path / "zipped", "--gzip")

    for name in ("plain", "zipped"):
        assert main(["convert", str(tmp_path / name), "--out", str(tmp_path / f"{name}-out")]) == 0

    def rows(name):
        lake = _lake(tmp_path / f"{name}-out", "transactions")
        return sorted((t["transaction_id"], t["total_amount"]) for t in lake)

    assert rows("plain") == rows("zipped")


def test_a_rerun_replaces_its_own_files_and_duplicates_nothing(tmp_path):
    _generate_history(tmp_path / "raw")
    out = tmp_path / "out"
    main(["convert", str(tmp_path / "raw"), "--out", str(out)])
    first = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())

    main(["convert", str(tmp_path / "raw"), "--out", str(out)])

    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == first
    assert len(_lake(out, "transactions")) == 4000


def test_bad_records_go_to_quarantine_with_reasons_and_good_ones_land(tmp_path, capsys):
    log = tmp_path / "mixed.ndjson"
    log.write_bytes(ndjson(record("a"), record("b", items=[]), "oops", record("c")))
    truncated = tmp_path / "damaged.ndjson.gz"
    truncated.write_bytes(gzip.compress(ndjson(record("d")))[:-9])
    out = tmp_path / "out"

    assert main(["convert", str(log), str(truncated), "--out", str(out)]) == 0

    assert sorted(t["transaction_id"] for t in _lake(out, "transactions")) == ["a", "c"]
    quarantine = out / layout.quarantine_key(log.resolve().as_posix())
    quarantined = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert [q["line_number"] for q in quarantined] == [2, 3]
    assert quarantined[0]["reason"] == "items is empty"
    assert quarantined[1]["reason"].startswith("not valid JSON")
    whole = json.loads((out / layout.quarantine_key(truncated.resolve().as_posix())).read_text())
    assert whole["line_number"] is None and "gzip" in whole["reason"]
    assert "quarantined 3 (1 files rejected whole)" in capsys.readouterr().out


def test_fixing_a_file_and_rerunning_clears_its_quarantine(tmp_path):
    log = tmp_path / "a.ndjson"
    log.write_bytes(ndjson(record("a"), record("b", items=[])))
    out = tmp_path / "out"
    main(["convert", str(log), "--out", str(out)])
    assert list((out / "quarantine").iterdir())

    log.write_bytes(ndjson(record("a"), record("b")))
    main(["convert", str(log), "--out", str(out)])

    assert not list((out / "quarantine").iterdir())
    assert sorted(t["transaction_id"] for t in _lake(out, "transactions")) == ["a", "b"]


def test_lake_files_have_the_schema_modules_types(tmp_path):
    _generate_history(tmp_path / "raw")
    main(["convert", str(tmp_path / "raw"), "--out", str(tmp_path / "out")])

    for table in schema.INGESTED_TABLES:
        dataset = ds.dataset(tmp_path / "out" / "lake" / table, format="parquet")
        assert dataset.schema.equals(schema.TABLES[table].remove_metadata()), table


def test_no_temporary_files_are_left_behind(tmp_path):
    _generate_history(tmp_path / "raw")
    main(["convert", str(tmp_path / "raw"), "--out", str(tmp_path / "out")])

    assert not [p for p in (tmp_path / "out").rglob(".tmp-*")]


def test_a_missing_source_is_a_clear_error(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nope.ndjson"), "--out", str(tmp_path)]) == 2
    assert "no such file or folder" in capsys.readouterr().err

    (tmp_path / "empty").mkdir()
    assert main(["convert", str(tmp_path / "empty"), "--out", str(tmp_path)]) == 2
    assert "no log files found" in capsys.readouterr().err


def test_bad_arguments_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "history", "--start", "March 1st"])
    assert exit_.value.code == 2
    assert "expected a date like 2026-01-31" in capsys.readouterr().err


def test_reference_data_is_written_as_parquet_tables(tmp_path):
    assert main(["generate", "reference", "--out", str(tmp_path), "--stores", "12"]) == 0

    stores = ds.dataset(tmp_path / layout.reference_key("supermarkets")).to_table()
    skus = ds.dataset(tmp_path / layout.reference_key("skus")).to_table()
    assert stores.num_rows == 12 and skus.num_rows == 12_000
    assert skus.schema.field("price").type == schema.MONEY_UNIT
    assert os.path.getsize(tmp_path / layout.reference_key("skus")) > 0
