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

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lake_contract import schema, tables
from lake_contract.tables import LakeTables
from lambda_ingest.transform import TransformResult

# Written first: see the module doc.
COMMIT_ORDER = ("transaction_items", "transactions")


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


def sources_present(lake: LakeTables, keys: list[str], days: list[Any]) -> set[str]:
    """Which of these sources already have rows in the lake, on these days."""
    from pyiceberg.expressions import And, In

    if not keys or not days:
        return set()
    scan = lake.table("transactions").scan(
        row_filter=And(In("source_key", keys), In(schema.PARTITION.name, days)),
        selected_fields=("source_key",),
    )
    return set(pc.unique(scan.to_arrow()["source_key"]).to_pylist())


def commit_sources(
    lake: LakeTables, results: list[tuple[str, TransformResult]], summary: dict[str, str]
) -> Committed:
    """Commits the rows of every (source key, transform result) in one snapshot per table."""
    from pyiceberg.expressions import In

    rows = {name: _rows(name, results) for name in COMMIT_ORDER}
    if not any(t.num_rows for t in rows.values()):
        return Committed()
    keys = sorted({key for key, r in results if r.transactions.num_rows})
    days = pc.unique(rows["transactions"][schema.PARTITION.name]).to_pylist()
    snapshots = {}
    with tables.commit_lock():
        for name in COMMIT_ORDER:
            lake.current(name)
        present = sorted(sources_present(lake, keys, days))
        properties = {**summary, "supermarket.sources": str(len(keys))}
        for name in COMMIT_ORDER:
            table = lake.table(name)
            if not rows[name].num_rows and not present:
                continue
            if present:
                with table.transaction() as replace:
                    replace.delete(In("source_key", present), snapshot_properties=properties)
                    replace.append(rows[name], snapshot_properties=properties)
            else:
                table.append(rows[name], snapshot_properties=properties)
            snapshots[name] = table.current_snapshot().snapshot_id
            if _due_for_expiry(table):
                tables.expire_old_snapshots(table)
    return Committed(snapshots, frozenset(present))


def _due_for_expiry(table: Any) -> bool:
    # Twice the kept count: one expiry commit per SNAPSHOTS_KEPT commits, not one per commit.
    return len(table.metadata.snapshots) > 2 * tables.SNAPSHOTS_KEPT
