import json
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from lake_contract import schema
from lake_contract.parquet import parquet_bytes, write_parquet
from lake_contract.quarantine import QUARANTINE_RECORD, quarantine_ndjson
from lambda_ingest.day_files import split_by_day
from lambda_ingest.transform import transform
from tests.factories import ndjson, record

REJECTED_AT = datetime(2026, 3, 1, 10, 15, 30, 250_000, tzinfo=UTC)


def _at(transaction_id, stamp, items=1):
    basket = [{"sku_id": f"SKU{n}", "quantity": 1, "unit_price": 1} for n in range(items)]
    return record(transaction_id, transaction_datetime=stamp, items=basket)


def test_rows_are_cut_per_utc_day_keeping_basket_order():
    data = ndjson(
        _at("a", "2026-03-01T23:59:00Z", 2),
        _at("b", "2026-03-02T00:01:00Z", 3),
        _at("c", "2026-03-01T22:00:00-05:00"),  # 03:00 UTC on the 2nd
        _at("d", "2026-03-01T08:00:00Z", 2),  # out of till order: needs the sort path
    )

    days = split_by_day(transform(data, "k"))

    assert [d.day for d in days] == [date(2026, 3, 1), date(2026, 3, 2)]
    assert days[0].transactions["transaction_id"].to_pylist() == ["a", "d"]
    assert days[1].transactions["transaction_id"].to_pylist() == ["b", "c"]
    lines = [(r["transaction_id"], r["line_number"]) for r in days[1].transaction_items.to_pylist()]
    assert lines == [("b", 1), ("b", 2), ("b", 3), ("c", 1)]
    assert "dt" not in days[0].transactions.column_names


def test_rows_in_till_order_are_sliced_the_same_as_sorted():
    stamps = ["2026-03-01T10:00:00Z", "2026-03-01T23:00:00Z", "2026-03-02T01:00:00Z"]
    data = ndjson(*[_at(str(i), s, 2) for i, s in enumerate(stamps)])

    days = split_by_day(transform(data, "k"))

    assert [d.transactions.num_rows for d in days] == [2, 1]
    assert [d.transaction_items.num_rows for d in days] == [4, 2]


def test_one_day_is_one_group_and_no_rows_no_groups():
    assert len(split_by_day(transform(ndjson(_at("a", "2026-03-01T10:00:00Z")), "k"))) == 1
    assert split_by_day(transform(b"", "k")) == []


def test_parquet_files_read_back_with_the_lake_schema(tmp_path):
    ingested = datetime(2026, 3, 2, 1, 2, 3, 456000, tzinfo=UTC)
    result = transform(ndjson(_at("a", "2026-03-01T10:00:00.123Z", 2)), "src", ingested)
    (day,) = split_by_day(result)

    for name, table in day.tables().items():
        path = tmp_path / f"{name}.parquet"
        write_parquet(table, str(path))
        back = pq.read_table(path)
        # plain types for every reader: no dictionary lineage, ms UTC timestamps, decimals
        assert back.schema.equals(schema.TABLES[name].remove_metadata()), name
        assert back["source_key"].to_pylist() == ["src"] * table.num_rows
        assert back["ingested_at"].to_pylist() == [ingested] * table.num_rows
        timestamps = pq.ParquetFile(path).schema.column(back.schema.get_field_index("ingested_at"))
        assert "isAdjustedToUTC=true, timeUnit=milliseconds" in str(timestamps.logical_type)


def test_parquet_bytes_and_files_hold_the_same_rows(tmp_path):
    (day,) = split_by_day(transform(ndjson(_at("a", "2026-03-01T10:00:00Z", 3)), "k"))

    in_memory = pq.read_table(pa.BufferReader(parquet_bytes(day.transaction_items)))

    write_parquet(day.transaction_items, str(tmp_path / "x.parquet"))
    assert in_memory.equals(pq.read_table(tmp_path / "x.parquet"))


def test_quarantine_records_name_source_line_and_reason():
    result = transform(ndjson(record("a"), record("b", items=[]), "nope"), "raw/x.ndjson")

    lines = [
        json.loads(line)
        for line in quarantine_ndjson("raw/x.ndjson", result.rejects, REJECTED_AT).split(b"\n")
        if line
    ]

    assert [(q["line_number"], q["transaction_id"]) for q in lines] == [(2, "b"), (3, None)]
    assert all(q["source_key"] == "raw/x.ndjson" and q["reason"] for q in lines)
    assert {q["ingested_at"] for q in lines} == {"2026-03-01T10:15:30.250Z"}
    assert lines[1]["raw"] == "nope"
    assert [set(q) for q in lines] == [set(QUARANTINE_RECORD.names)] * 2


def test_statistics_are_kept_where_queries_filter(tmp_path):
    (day,) = split_by_day(transform(ndjson(_at("a", "2026-03-01T10:00:00Z", 2)), "k"))
    path = tmp_path / "t.parquet"
    write_parquet(day.transactions, str(path))

    group = pq.ParquetFile(path).metadata.row_group(0)
    with_stats = {group.column(i).path_in_schema
                  for i in range(group.num_columns) if group.column(i).is_stats_set}  # fmt: skip
    assert with_stats == {"transaction_datetime", "total_amount", "ingested_at"}
