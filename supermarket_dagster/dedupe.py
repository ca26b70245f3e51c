"""A transaction id landed twice from different sources: the later copy taken out of the lake and
quarantined with a reason naming the id and the source that holds it.

The transform rejects an id repeated inside one file; the committer replaces a source delivered
again. What neither sees is the same id in two different sources (a producer that sent a
basket again in a new file). Compaction runs this on the day before rewriting it, so the
tables hold each id once. Per day: the copy whose raw log arrived first stays (the log's S3
`LastModified`, to the second; then `ingested_at`; then the source key), so a redelivery of the
first source, which ingests it again later, never turns it into the later copy. Each later
copy's transaction row and item rows leave both tables in one commit per table, its source's
quarantine object gets a record with the reason, and a restated audit record for that source
(`layout.audit_restatement_key`, beside the log: the log's settled past is digested for good)
states its rows and quarantined records as they now are, so the day's reconciliation check
still adds up. The quarantine record is written first: a failure before the commit leaves the
rows in place and a record the next run finds written already. Scope: one UTC day (the copies
of an id with different days are not compared), as the day check `transaction_id_unique` is.
"""

import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from lake_contract import layout, s3, schema, tables
from lake_contract.quarantine import Reject, quarantine_ndjson, quarantine_records
from lake_contract.s3 import LakeBucket
from lake_contract.tables import LakeTables
from supermarket_dagster import lake_day

RULE = "transaction_id unique across sources"
RAW_TEXT_LIMIT = 64 * 1024  # as the transform cuts a rejected line


@dataclass(frozen=True)
class Dedupe:
    day: date
    ids: int = 0  # ids that had more than one copy on the day
    copies_removed: int = 0  # transaction rows taken out (their items with them)
    items_removed: int = 0
    sources: list[str] = field(default_factory=list)  # sources a copy was taken from
    item_lines_twice: int = 0  # item lines one source had committed twice, removed

    def metadata(self) -> dict[str, int]:
        return {"dedupe_ids": self.ids, "dedupe_copies_removed": self.copies_removed,
                "dedupe_items_removed": self.items_removed,
                "dedupe_sources": len(self.sources),
                "dedupe_item_lines_twice": self.item_lines_twice}  # fmt: skip


def reason(transaction_id: str, kept_source: str) -> str:
    return f"transaction_id {transaction_id!r} is already in the lake from {kept_source} ({RULE})"


def repeated_copies(rows: pa.Table) -> pa.Table:
    """The rows (transaction_id, source_key, ingested_at) of ids the day holds more than once."""
    if not rows.num_rows:
        return rows
    counts = pc.value_counts(rows["transaction_id"])
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    return rows.filter(pc.is_in(rows["transaction_id"], value_set=repeated))


def later_copies(
    copies: pa.Table, arrived: dict[str, datetime] | None = None
) -> dict[str, dict[str, str]]:
    """source key -> {id: the source whose copy stays} for every copy but the first, the first
    being the one whose source arrived first (then ingested first, then by key)."""
    arrived = arrived or {}
    never = datetime.max.replace(tzinfo=UTC)
    rows = sorted(
        zip(copies["transaction_id"].to_pylist(), copies["source_key"].to_pylist(),
            copies["ingested_at"].to_pylist(), strict=True),
        key=lambda r: (r[0], arrived.get(r[1], never), r[2], r[1]),
    )  # fmt: skip
    later: dict[str, dict[str, str]] = defaultdict(dict)
    kept: dict[str, str] = {}
    for tid, source, _ in rows:
        if tid not in kept:
            kept[tid] = source
        elif source != kept[tid]:  # the same source twice is the committer's, not this rule's
            later[source][tid] = kept[tid]
    return dict(later)


def _arrivals(objects: LakeBucket, sources: set[str]) -> dict[str, datetime]:
    """When each source's raw log landed in S3 (absent: gone since, ordered by ingestion)."""
    arrived = {}
    for source in sorted(sources):
        try:
            head = objects.client.head_object(Bucket=objects.name, Key=source)
        except Exception as exc:
            if s3.is_missing(exc):
                continue
            raise
        arrived[source] = head["LastModified"]
    return arrived


def _rejects(objects: LakeBucket, source: str, ids: dict[str, str]) -> list[Reject]:
    """A reject per later copy, with its line in the raw log when the log is still there."""
    body = objects.read_if_present(source) or b""
    found: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(body.splitlines(), start=1):
        if not any(tid.encode() in line for tid in ids.keys() - found.keys()):
            continue
        try:
            tid = json.loads(line).get("transaction_id")
        except (ValueError, AttributeError):
            continue
        if tid in ids and tid not in found:
            found[tid] = (number, line[:RAW_TEXT_LIMIT].decode("utf-8", "replace"))
    rejects = []
    for tid, kept in sorted(ids.items()):
        number, raw = found.get(tid, (None, None))
        rejects.append(Reject(reason(tid, kept), number, tid, raw))
    return rejects


def _quarantine(objects: LakeBucket, source: str, rejects: list[Reject], now: datetime) -> int:
    """Adds the rejects its quarantine object lacks; how many records it then holds."""
    key = layout.quarantine_key(source)
    existing = quarantine_records(objects.read_if_present(key) or b"")
    recorded = {(r.get("transaction_id"), r.get("reason")) for r in existing}
    new = [r for r in rejects if (r.transaction_id, r.reason) not in recorded]
    if new:
        body = b"".join(json.dumps(r).encode() + b"\n" for r in existing)
        objects.write(key, body + quarantine_ndjson(source, new, now), "application/x-ndjson")
    return len(existing) + len(new)


# What the dedupe reads of the day's transactions: the ids and where each copy came from.
COPY_COLUMNS = ("transaction_id", "source_key", "ingested_at")


def items_committed_twice(lake: LakeTables, day: date) -> int:
    """Item lines a source holds twice, made once again; how many lines it removed.

    A batch is two commits, items then transactions: a batch that failed between them (S3 gone
    mid-commit, a runtime killed) was retried by a committer that looked its sources up in
    transactions, and the retry appended their items a second time. (The committer now looks
    them up in items, so a retry replaces them.) One commit replaces every line of those
    transactions by one copy each, the newest (the retry's, whose transactions landed).

    A retry converts the log again, so its lines carry a later ingested_at than the first
    attempt's, and one attempt's lines are never appended twice (the committer replaces its
    own on a retried commit). So only a source whose lines carry two ingestion times can hold a
    line twice: the day's sources are found from two columns read a file at a time (reading every
    line whole, every 5 minutes on the open day, took GiBs by the afternoon), and only those
    sources' lines are read whole."""
    from pyiceberg.expressions import And, EqualTo, In, Or

    stamped = lake_day.scan_day(lake, "transaction_items", day, ("source_key", "ingested_at"), [])
    suspects = stamped.sources.ingested_more_than_once()
    if not suspects:
        return 0
    items = lake_day.read_day(lake, "transaction_items", day, sources=suspects).rows
    if not items.num_rows:
        return 0
    line = pc.binary_join_element_wise(
        items["source_key"], items["transaction_id"], pc.cast(items["line_number"], pa.string()),
        "\x1f",
    )  # fmt: skip
    counts = pc.value_counts(line)
    twice = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    if not len(twice):
        return 0
    pair = pc.binary_join_element_wise(items["source_key"], items["transaction_id"], "\x1f")
    pairs = pc.unique(pc.filter(pair, pc.is_in(line, value_set=twice)))
    affected = items.filter(pc.is_in(pair, value_set=pairs))
    ordered = affected.take(pc.sort_indices(affected, [("ingested_at", "descending")]))
    seen, keep = set(), []
    lines = pc.binary_join_element_wise(
        ordered["source_key"], ordered["transaction_id"],
        pc.cast(ordered["line_number"], pa.string()), "\x1f",
    ).to_pylist()  # fmt: skip
    for index, key in enumerate(lines):
        if key not in seen:
            seen.add(key)
            keep.append(index)
    kept = ordered.take(pa.array(keep, pa.int64()))
    by_source: dict[str, set[str]] = defaultdict(set)
    for source, tid in zip(affected["source_key"].to_pylist(),
                           affected["transaction_id"].to_pylist(), strict=True):  # fmt: skip
        by_source[source].add(tid)
    terms = [And(EqualTo("source_key", s), In("transaction_id", sorted(ids)))
             for s, ids in by_source.items()]  # fmt: skip
    where = And(EqualTo(schema.PARTITION.name, day.isoformat()),
                terms[0] if len(terms) == 1 else Or(*terms))  # fmt: skip
    with tables.commit_lock():
        iceberg = lake.current("transaction_items")
        with iceberg.transaction() as replace_lines:  # one commit: never a line missing
            replace_lines.delete(where, snapshot_properties={"supermarket.dedupe": "items"})
            replace_lines.append(kept, snapshot_properties={"supermarket.dedupe": "items"})
    return affected.num_rows - kept.num_rows


def dedupe_day(lake: LakeTables, objects: LakeBucket, day: date) -> Dedupe:
    """Takes every later copy of an id out of the day (see the module doc), after making item
    lines committed twice by one source once again (items_committed_twice)."""
    from pyiceberg.expressions import And, EqualTo, In, Or

    lines_twice = items_committed_twice(lake, day)
    transactions = lake_day.read_day(lake, "transactions", day, COPY_COLUMNS).rows
    copies = repeated_copies(transactions)
    arrived = _arrivals(objects, set(copies["source_key"].to_pylist())) if copies.num_rows else {}
    later = later_copies(copies, arrived)
    if not later:
        return Dedupe(day, item_lines_twice=lines_twice)
    now = datetime.now(UTC)
    quarantined = {source: _quarantine(objects, source, _rejects(objects, source, ids), now)
             for source, ids in later.items()}  # fmt: skip
    items = lake_day.read_day(lake, "transaction_items", day, COPY_COLUMNS, sources=later).rows
    # Each source's rows on the day once its later copies are out: what its audit must state.
    remaining: dict[str, dict[str, int]] = {}
    removed_items = 0
    for source, ids in later.items():
        gone = pa.array(list(ids))
        counts = {}
        for name, rows in (("transactions", transactions), ("transaction_items", items)):
            mine = rows.filter(pc.equal(rows["source_key"], source))
            out = pc.sum(pc.cast(pc.is_in(mine["transaction_id"], value_set=gone), pa.int64()))
            counts[name] = mine.num_rows - (out.as_py() or 0)
            removed_items += (out.as_py() or 0) if name == "transaction_items" else 0
        remaining[source] = counts
    copies = [And(EqualTo("source_key", s), In("transaction_id", list(ids)))
              for s, ids in later.items()]  # fmt: skip
    where = copies[0] if len(copies) == 1 else Or(*copies)
    with tables.commit_lock():
        for name in ("transaction_items", "transactions"):  # as the committer: items first
            lake.current(name).delete(
                And(EqualTo(schema.PARTITION.name, day.isoformat()), where),
                snapshot_properties={"supermarket.dedupe": str(sum(map(len, later.values())))},
            )
    _restate_audits(objects, day, remaining, quarantined, transactions)
    return Dedupe(
        day,
        ids=len({tid for ids in later.values() for tid in ids}),
        copies_removed=sum(len(ids) for ids in later.values()),
        items_removed=removed_items,
        sources=sorted(later),
        item_lines_twice=lines_twice,
    )


def _restate_audits(
    objects: LakeBucket,
    day: date,
    remaining: dict[str, dict[str, int]],
    quarantined: dict[str, int],
    transactions: pa.Table,
) -> None:
    """A new audit record per source a copy left: its latest one with the day's rows and its
    quarantined records as they now are (the day check reads only a source's latest record)."""
    sources = pa.array(list(remaining))
    times = transactions.filter(pc.is_in(transactions["source_key"], value_set=sources))[
        "ingested_at"
    ].to_pylist()
    latest = lake_day.latest_audits(objects, day, set(remaining), min(times), max(times))
    for source, counts in remaining.items():
        record = latest.get(source)
        if record is None:
            continue  # no audit record to restate: the day check already flags the source
        per_day = {d: dict(c) for d, c in record.rows_per_day.items()}
        per_day[day.isoformat()] = dict(counts)
        written = {name: sum(c.get(name, 0) for c in per_day.values())
                   for name in ("transactions", "transaction_items")}  # fmt: skip
        # A millisecond after the record it restates: the newest of the source. Kept beside the
        # log (layout.audit_restatement_key), where the day's check looks for it.
        after = record.finished_at + timedelta(milliseconds=1)
        restated = replace(
            record,
            event_time=None,  # not an ingestion: no lag to report
            started_at=after,
            finished_at=after,
            records_quarantined=quarantined[source],
            rows_written=written,
            rows_per_day=per_day,
            outputs=[*record.outputs, f"dedupe:{RULE}"],
        )
        objects.write(layout.audit_restatement_key(day, source), restated.to_json(),
                      "application/json")  # fmt: skip
