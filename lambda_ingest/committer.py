"""One Iceberg commit per table for a batch of converted sources: the Lambda's and the backfill's
only way into the fact tables.

A source delivered again must add nothing and lose nothing. Before committing, the batch's
source keys are looked up in the transactions table (its manifest prunes by the full bounds of
source_key, so this reads only files that may hold them): a source already there has its old
rows deleted in the same commit that appends its new ones, so a redelivery or a rewritten log
replaces itself; a new source is a plain append, the fast and common case. Items are
committed before transactions, so a reader that looks up transactions first never sees a
transaction without its items.
"""

import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lake_contract import tables
from lake_contract.tables import LakeTables
from lambda_ingest.transform import TransformResult

# Written first: see the module doc.
COMMIT_ORDER = ("transaction_items", "transactions")
_writers = ThreadPoolExecutor(max_workers=len(COMMIT_ORDER), thread_name_prefix="data-files")


@dataclass(frozen=True)
class Committed:
    """What one commit did: the snapshot of each table it wrote into, and the sources it
    replaced rather than added (already in the lake: a redelivery or a rewritten log)."""

    snapshots: dict[str, int] = field(default_factory=dict)
    replaced_sources: frozenset[str] = frozenset()


def _rows(name: str, results: list[tuple[str, TransformResult]]) -> pa.Table:
    parts = [getattr(r, name) for _, r in results if getattr(r, name).num_rows]
    if not parts:
        return tables.arrow_schema(name).empty_table()
    return pa.concat_tables([tables.as_table_rows(name, p) for p in parts])


# Manifest files never change once written: the source_key bounds of the data files each one
# lists are read once per container, so a check reads only the manifests new since the last.
_MANIFEST_BOUNDS: OrderedDict[str, list[tuple[bytes, bytes, str]]] = OrderedDict()
_MANIFESTS_CACHED = 4_096


def _source_bounds(manifest: Any, io: Any, field_id: int) -> list[tuple[bytes, bytes, str]]:
    """(lower, upper, data file) of every live data file the manifest lists."""
    path = manifest.manifest_path
    if path in _MANIFEST_BOUNDS:
        _MANIFEST_BOUNDS.move_to_end(path)
        return _MANIFEST_BOUNDS[path]
    bounds = [
        (entry.data_file.lower_bounds[field_id], entry.data_file.upper_bounds[field_id],
         entry.data_file.file_path)
        for entry in manifest.fetch_manifest_entry(io, discard_deleted=True)
    ]  # fmt: skip
    _MANIFEST_BOUNDS[path] = bounds
    if len(_MANIFEST_BOUNDS) > _MANIFESTS_CACHED:
        _MANIFEST_BOUNDS.popitem(last=False)
    return bounds


def sources_present(lake: LakeTables, keys: list[str]) -> set[str]:
    """Which of these sources already have rows in the transactions table: the data files
    whose source_key bounds take in a key (full bounds, UTF-8 order), then their column."""
    import pyarrow.parquet as pq

    table = lake.table("transactions")
    snapshot = table.current_snapshot()
    if not keys or snapshot is None:
        return set()
    field_id = table.schema().find_field("source_key").field_id
    wanted = sorted(k.encode() for k in keys)
    candidates = {
        path
        for manifest in snapshot.manifests(table.io)
        for low, high, path in _source_bounds(manifest, table.io, field_id)
        if any(low <= key <= high for key in wanted)
    }
    found: set[str] = set()
    for path in sorted(candidates):
        column = pq.read_table(table.io.new_input(path).open(), columns=["source_key"])
        found |= set(pc.unique(column["source_key"]).to_pylist()) & set(keys)
    return found


def _data_files(table: Any, rows: pa.Table) -> list[Any]:
    """The rows written as the table's Parquet data files, not yet part of any snapshot."""
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    if not rows.num_rows:
        return []
    files = _dataframe_to_data_files(
        table_metadata=table.metadata, write_uuid=uuid.uuid4(), df=rows, io=table.io
    )
    return list(files)


def commit_sources(
    lake: LakeTables, results: list[tuple[str, TransformResult]], summary: dict[str, str]
) -> Committed:
    """Commits the rows of every (source key, transform result) in one snapshot per table.

    The data files of both tables are written first, at once and outside the commit lock; the
    lock is held only to look the sources up and commit (a file of a commit that never
    happens is an orphan, which housekeeping removes)."""
    from pyiceberg.expressions import In

    rows = {name: _rows(name, results) for name in COMMIT_ORDER}
    if not any(t.num_rows for t in rows.values()):
        return Committed()
    keys = sorted({key for key, r in results if r.transactions.num_rows})
    written = dict(
        zip(COMMIT_ORDER, _writers.map(lambda n: _data_files(lake.table(n), rows[n]), COMMIT_ORDER),
            strict=True)
    )  # fmt: skip
    snapshots = {}
    with tables.commit_lock():
        for name in COMMIT_ORDER:
            lake.current(name)
        present = sorted(sources_present(lake, keys))
        properties = {**summary, "supermarket.sources": str(len(keys))}
        for name in COMMIT_ORDER:
            table = lake.table(name)
            if not rows[name].num_rows and not present:
                continue
            with table.transaction() as commit:
                if present:  # a redelivery or a rewritten log: its old rows out, in one commit
                    commit.delete(In("source_key", present), snapshot_properties=properties)
                update = commit.update_snapshot(snapshot_properties=properties)
                with update.merge_append() as append:
                    for data_file in written[name]:
                        append.append_data_file(data_file)
            snapshots[name] = table.current_snapshot().snapshot_id
            if _due_for_expiry(table):
                tables.expire_old_snapshots(table)
    return Committed(snapshots, frozenset(present))


def _due_for_expiry(table: Any) -> bool:
    # Twice the kept count: one expiry commit per SNAPSHOTS_KEPT commits, not one per commit.
    return len(table.metadata.snapshots) > 2 * tables.SNAPSHOTS_KEPT
