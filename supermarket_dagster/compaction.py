"""Compaction: a closed day's many small per-source objects rewritten as a few large ones.

S3 has no multi-object transaction and every reader (DuckDB's glob, Athena's partition
location) lists the day's prefix, so the swap is ordered never to hide a row: every new object
is written before any old one is deleted. A reader listing inside that window sees the moved
rows twice, never fewer; outside it, exactly once. Every row carries its source_key, so a source
with rows in two places is detectable (compaction_kept_every_row), and compacting the day again
repairs it (late_files_sensor asks for that when a Lambda file lands in a compacted day).

Which rows a compaction keeps, per source: a per-source object (the Lambda's or the backfill's,
always the freshest copy) over any compacted copy; otherwise the copy in one complete earlier
generation; an incomplete generation's rows only when no other copy exists.
"""

import hashlib
import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake_contract import layout, schema
from lake_contract.parquet import parquet_bytes
from lake_contract.s3 import LakeBucket, StoredObject
from supermarket_dagster.fingerprint import Fingerprint, fingerprint

TABLES = ("transactions", "transaction_items")
DEFAULT_TARGET_BYTES = 128 * 1024 * 1024
DEFAULT_GRACE = timedelta(hours=6)
FOOTER_KEY = "supermarket.compaction"
MAX_PARTS = 9_999  # the part count is four digits in the key

# Time first, so each part and row group covers a narrow time range that min/max statistics
# prune; the other columns make the order total, so the same rows always give the same bytes.
_LEADING_SORT = {
    "transactions": ("transaction_datetime", "transaction_id"),
    "transaction_items": ("transaction_id", "line_number"),
}
# Leaves room for the estimate of bytes per row to be a little low.
_FILL = 0.9
_SAMPLE_ROWS = 65_536


class OpenDay(ValueError):
    """A day that may still receive files: compacting it would race the Lambda."""


def closes_at(day: date, grace: timedelta = DEFAULT_GRACE) -> datetime:
    """When a day is closed: its last UTC instant plus the grace for late files and retries."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) + grace


def require_closed(day: date, grace: timedelta, now: datetime | None = None) -> None:
    closes = closes_at(day, grace)
    if (now or datetime.now(UTC)) < closes:
        raise OpenDay(
            f"dt={day} is open until {closes:%Y-%m-%d %H:%M} UTC (the day's end plus "
            f"{grace.total_seconds() / 3600:g} h of grace for late files and redeliveries); "
            "compaction leaves it alone"
        )


def day_parquet(objects: LakeBucket, table: str, day: date) -> list[StoredObject]:
    """The Parquet objects readers see for one day of one table."""
    listed = objects.listing(layout.day_prefix(layout.table_prefix(table), day))
    return [o for o in listed if o.key.endswith(".parquet")]


def _bodies(objects: LakeBucket, listed: list[StoredObject]) -> dict[str, bytes]:
    keys = [o.key for o in listed]
    return dict(zip(keys, objects.read_many(keys), strict=True))


@dataclass(frozen=True)
class TablePlan:
    """One table's compaction of one day, computed before anything in the lake changes."""

    table: str
    day: date
    objects: list[StoredObject]  # what readers list now
    generation: str
    parts: dict[str, bytes]  # the new objects, by key
    obsolete_compacted: list[str]  # deleted first (see swap)
    obsolete_sources: list[str]
    before: Fingerprint  # every row readers see now, duplicates included
    superseded: Fingerprint  # compacted rows with a fresher per-source copy or a twin elsewhere
    after: Fingerprint  # the rows of the new objects

    @property
    def noop(self) -> bool:
        return not self.obsolete_compacted and not self.obsolete_sources

    def metadata(self) -> dict[str, Any]:
        return {
            "objects_before": len(self.objects),
            "objects_after": len(self.parts),
            "bytes_before": sum(o.size for o in self.objects),
            "bytes_after": sum(len(b) for b in self.parts.values()),
            "rows_before": self.before.rows,
            "rows_superseded": self.superseded.rows,
            "rows_after": self.after.rows,
            "generation": self.generation,
            "largest_part_bytes": max((len(b) for b in self.parts.values()), default=0),
        }


def plan_table(
    table: str,
    day: date,
    objects: list[StoredObject],
    bodies: dict[str, bytes],
    target_bytes: int | None = None,
) -> TablePlan:
    """Merges one day of one table (the listed objects and their bytes) into parts of about
    `target_bytes` (None: the target the day was last compacted with, else the default)."""
    compacted, sources = _classify(objects)
    read = {o.key: _read(bodies[o.key]) for o in objects}
    if target_bytes is None:
        target_bytes = _recorded_target(read, compacted) or DEFAULT_TARGET_BYTES
    if target_bytes <= 0:
        raise ValueError(f"target_bytes must be positive, got {target_bytes}")
    # Counted on everything read, independently of which copies are kept below.
    before = fingerprint(table, _concat(table, [rows for rows, _ in read.values()]))
    generations = _generations(compacted)
    if not sources and len(generations) == 1 and _complete(next(iter(generations.values()))):
        return TablePlan(table, day, objects, next(iter(generations)),
                         {k: bodies[k] for k in compacted}, [], [], before, Fingerprint(),
                         before)  # fmt: skip

    kept = [read[o.key][0] for o in sources]
    placed = _source_keys(kept)
    ordered = sorted(generations.items(), key=lambda g: (not _complete(g[1]), g[0]))
    superseded = Fingerprint()
    for _, members in ordered:
        rows = _concat(table, [read[key][0] for key in sorted(members)])
        # a source already placed has a fresher copy, or the same rows in another generation
        repeated = pc.is_in(rows["source_key"], value_set=pa.array(sorted(placed), pa.string()))
        superseded += fingerprint(table, rows.filter(repeated))
        kept.append(rows.filter(pc.invert(repeated)))
        placed |= _source_keys([rows])
    merged = _sorted(table, _concat(table, kept))
    after = fingerprint(table, merged)
    if after != before - superseded:  # the arithmetic proof; the check repeats it on the lake
        raise AssertionError(f"{table} dt={day}: kept {after} != read {before} - {superseded}")

    generation = _generation_digest(objects, target_bytes)
    parts = _cut(table, day, merged, generation, target_bytes, len(objects))
    return TablePlan(
        table, day, objects, generation, parts,
        obsolete_compacted=sorted(k for k in compacted if k not in parts),
        obsolete_sources=sorted(o.key for o in sources),
        before=before, superseded=superseded, after=after,
    )  # fmt: skip


def _classify(objects: list[StoredObject]) -> tuple[list[str], list[StoredObject]]:
    compacted = [o.key for o in objects if layout.parse_compacted_key(o.key)]
    sources = [o for o in objects if not layout.parse_compacted_key(o.key)]
    return compacted, sources


def _generations(compacted: list[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for key in compacted:
        generation, _, _ = layout.parse_compacted_key(key)
        groups.setdefault(generation, []).append(key)
    return groups


def _complete(members: list[str]) -> bool:
    parsed = [layout.parse_compacted_key(k) for k in members]
    return {p[1] for p in parsed} == set(range(parsed[0][2]))


def _read(body: bytes) -> tuple[pa.Table, dict[str, Any]]:
    parquet = pq.ParquetFile(pa.BufferReader(body))
    footer = (parquet.metadata.metadata or {}).get(FOOTER_KEY.encode())
    return parquet.read(), json.loads(footer) if footer else {}


def _recorded_target(read: dict[str, tuple[pa.Table, dict]], compacted: list[str]) -> int | None:
    """The target an earlier compaction of the day recorded in its footers, if any."""
    return max((read[k][1].get("target_bytes") or 0 for k in compacted), default=0) or None


def _source_keys(tables: list[pa.Table]) -> set[str]:
    return {s for t in tables for s in pc.unique(t["source_key"]).to_pylist()}


def _concat(table: str, parts: list[pa.Table]) -> pa.Table:
    """Rows in the lake's own schema, whatever encoding each file was read with."""
    target = schema.TABLES[table].remove_metadata()
    if not parts:
        return target.empty_table()
    # One chunk: sorting thousands of small chunks costs many times more time and memory.
    return pa.concat_tables([p.select(target.names).cast(target) for p in parts]).combine_chunks()


def _sorted(table: str, rows: pa.Table) -> pa.Table:
    leading = _LEADING_SORT[table]
    keys = [*leading, *(n for n in rows.column_names if n not in leading)]
    return rows.take(pc.sort_indices(rows, sort_keys=[(k, "ascending") for k in keys]))


def _generation_digest(objects: list[StoredObject], target_bytes: int) -> str:
    """Names what this compaction replaced: the same objects (same ETags) give the same name."""
    listing = "\n".join(f"{o.key} {o.etag}" for o in sorted(objects, key=lambda o: o.key))
    return hashlib.sha256(f"{listing}\ntarget={target_bytes}".encode()).hexdigest()[:16]


def _cut(
    table: str, day: date, rows: pa.Table, generation: str, target_bytes: int, replaced: int
) -> dict[str, bytes]:
    """Cuts sorted rows into the fewest even parts that each stay within target_bytes."""
    if rows.num_rows == 0:
        return {}
    sample = rows.slice(0, _SAMPLE_ROWS)
    per_row = len(parquet_bytes(sample)) / sample.num_rows
    count = max(1, math.ceil(rows.num_rows * per_row / (target_bytes * _FILL)))
    while True:
        count = min(count, rows.num_rows)
        if count > MAX_PARTS:
            raise ValueError(f"{table} dt={day} needs {count} parts; raise target_bytes")
        size = math.ceil(rows.num_rows / count)
        bodies = {}
        for part in range(count):
            piece = rows.slice(part * size, size)
            footer = {
                "table": table,
                "dt": day.isoformat(),
                "generation": generation,
                "part": part,
                "parts": count,
                "rows": piece.num_rows,
                "target_bytes": target_bytes,
                "replaced_objects": replaced,
            }
            key = layout.compacted_key(table, day, generation, part, count)
            bodies[key] = parquet_bytes(piece, {FOOTER_KEY: json.dumps(footer, sort_keys=True)})
        largest = max(len(b) for b in bodies.values())
        if largest <= target_bytes or size == 1:
            return bodies
        count = max(count + 1, math.ceil(count * largest / (target_bytes * _FILL)))


@dataclass(frozen=True)
class DayCompaction:
    day: date
    plans: list[TablePlan]
    listed_at: float  # time.time() before the listing: a file landing later may be left out
    seconds: float
    read_seconds: float  # listing and GETs, the part that grows with the number of objects
    swap_started: float  # time.time() when the first new object was sent
    swap_finished: float  # time.time() when the last old object was gone

    @property
    def noop(self) -> bool:
        return all(p.noop for p in self.plans)

    def fingerprints(self) -> dict[str, dict[str, Any]]:
        return {p.table: p.after.to_json() for p in self.plans}

    def metadata(self) -> dict[str, Any]:
        flat: dict[str, Any] = {
            "dt": self.day.isoformat(),
            "noop": self.noop,
            "listed_at": datetime.fromtimestamp(self.listed_at, UTC).isoformat(),
            "duration_s": round(self.seconds, 3),
            "read_s": round(self.read_seconds, 3),
            "swap_window_ms": round((self.swap_finished - self.swap_started) * 1000, 1),
        }
        for plan in self.plans:
            for name, value in plan.metadata().items():
                flat[f"{plan.table}.{name}"] = value
        flat["fingerprint_before"] = {p.table: p.before.to_json() for p in self.plans}
        flat["fingerprint_superseded"] = {p.table: p.superseded.to_json() for p in self.plans}
        flat["fingerprint_after"] = self.fingerprints()
        return flat


def day_is_compacted(objects: LakeBucket, day: date) -> bool:
    return any(
        layout.parse_compacted_key(o.key)
        for table in TABLES
        for o in day_parquet(objects, table, day)
    )


def compact_day(objects: LakeBucket, day: date, target_bytes: int | None = None) -> DayCompaction:
    """Compacts both tables of one day; plans everything first, then swaps (see module doc)."""
    clock, listed_at = time.perf_counter(), time.time()
    plans, reading = [], 0.0
    for table in TABLES:
        began = time.perf_counter()
        listed = day_parquet(objects, table, day)
        bodies = _bodies(objects, listed)
        reading += time.perf_counter() - began
        plans.append(plan_table(table, day, listed, bodies, target_bytes))
    started, finished = swap(objects, plans)
    elapsed = time.perf_counter() - clock
    return DayCompaction(day, plans, listed_at, elapsed, reading, started, finished)


def swap(objects: LakeBucket, plans: list[TablePlan]) -> tuple[float, float]:
    """Writes every new part, then deletes the old compacted parts, then the per-source objects.

    New before old: a reader never misses a row. Old compacted before per-source: should this
    stop half-way, whatever remains still holds each source's freshest rows, so the next
    compaction picks them up (a per-source object outranks every compacted copy).
    """
    started = time.time()
    if all(p.noop for p in plans):
        return started, started
    new_parts = {k: b for p in plans if not p.noop for k, b in p.parts.items()}
    objects.write_many(new_parts, "application/x-parquet")
    objects.delete_many([k for p in plans for k in p.obsolete_compacted])
    objects.delete_many([k for p in plans for k in p.obsolete_sources])
    return started, time.time()


@dataclass(frozen=True)
class TableSurvey:
    """What readers of one table's day see now, and any source they would see twice."""

    table: str
    objects: int
    rows: Fingerprint
    sources_in_several_places: list[str]  # source_keys with rows in two objects or generations


def survey_day(objects: LakeBucket, day: date) -> list[TableSurvey]:
    surveys = []
    for table in TABLES:
        listed = day_parquet(objects, table, day)
        bodies = _bodies(objects, listed)
        found, places = Fingerprint(), {}
        for item in listed:
            rows, _ = _read(bodies[item.key])
            found += fingerprint(table, rows)
            parsed = layout.parse_compacted_key(item.key)
            place = f"generation {parsed[0]}" if parsed else item.key  # parts of one generation
            for source in pc.unique(rows["source_key"]).to_pylist():
                places.setdefault(source, set()).add(place)
        several = sorted(s for s, p in places.items() if len(p) > 1)
        surveys.append(TableSurvey(table, len(listed), found, several))
    return surveys
