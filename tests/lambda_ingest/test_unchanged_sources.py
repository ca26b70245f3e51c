"""Finding a source's rows in a data file: only the row groups and batches that hold them."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.io.pyarrow import PyArrowFileIO

from lake_contract import tables
from lambda_ingest import committer

AT = datetime(2026, 3, 1, 10, tzinfo=UTC)


def _lines(sources: list[str], per_source: int) -> pa.Table:
    """Each source's lines together, in ingestion order, as a compacted file holds them."""
    rows = [
        {"transaction_id": f"{source}-{n // 3}", "store_id": "STORE0001", "line_number": n % 3 + 1,
         "sku_id": f"SKU{n:05d}", "quantity": 1 + n % 4, "unit_price": "1.25",
         "source_key": source, "ingested_at": AT, "dt": AT.date()}
        for source in sources for n in range(per_source)
    ]  # fmt: skip
    shape = tables.arrow_schema("transaction_items")
    columns = {f.name: pa.array([r[f.name] for r in rows]).cast(f.type) for f in shape}
    return pa.table(columns).cast(shape)


def test_the_rows_of_the_wanted_sources_are_read_whole_from_any_row_group(tmp_path, monkeypatch):
    sources = [f"raw/incoming/dt=2026-03-01/{n:03d}.ndjson" for n in range(16)]
    lines = _lines(sources, 257)
    path = str(tmp_path / "compacted.parquet")
    pq.write_table(lines, path, row_group_size=1_000)  # 5 row groups, each in batches of 256
    monkeypatch.setattr(committer, "_BATCH_ROWS", 256)
    table = SimpleNamespace(io=PyArrowFileIO())
    # the first source (in its row group, the last line wanted is the first of a batch), one
    # across two row groups, the last one; and one not in the file
    wanted = frozenset({sources[0], sources[7], sources[15], "raw/incoming/other.ndjson"})
    columns = [c for c in lines.column_names if c != "ingested_at"]

    found = committer._rows_of(table, {path: wanted}, columns, "transaction_items")

    expected = lines.filter(pc.is_in(lines["source_key"], pa.array(sorted(wanted))))
    assert found.num_rows == 3 * 257
    assert found.equals(expected.select(columns))
