"""One day of the fact tables as their current Iceberg snapshots hold it, and the counts that
reconcile it (raw records = lake rows + quarantined records): the raw logs, audit records and
quarantine objects read through the one S3 layer. The day checks (defs/history/checks.py) run
the rules of quality.py over it."""

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lake_contract import layout, schema, tables
from lake_contract.audit import AuditRecord
from lake_contract.quarantine import quarantine_records
from lake_contract.s3 import LakeBucket
from lake_contract.tables import LakeTables
from supermarket_dagster import audit_digest, quality

SLACK = timedelta(minutes=5)  # an audit record lands this close to its rows' ingested_at
IN_FLIGHT = timedelta(minutes=2)  # past the queue's 3 tries x 30 s, a log not ingested is late
SWEEP_EVERY = timedelta(hours=1)  # a rechecked day's raw prefixes listed whole this often
MOST_RUNS = 32  # producers listed run by run between two whole listings; past it, whole
# Columns of few distinct values, which Parquet stores dictionary-encoded: a scan reads them so,
# and the rules work on each distinct value once (a day's lines repeat a few thousand SKUs).
DICTIONARY_COLUMNS = ("source_key", "sku_id")


def _values(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """column.to_pylist(), but a UTC timestamp column's in a tenth of the time: Arrow makes each
    aware datetime through its time zone (~4 us a value, 0.2 s for a day's 43,000 sources)."""
    kind = column.type
    if not (pa.types.is_timestamp(kind) and kind.tz == "UTC" and kind.unit == "ms"):
        return column.to_pylist()
    stamps = column.cast(pa.int64()).fill_null(0).to_numpy().tolist()
    # A double holds a millisecond's instant far closer than the microsecond it is rounded to.
    return [datetime.fromtimestamp(ms / 1000, UTC) if valid else None
            for ms, valid in zip(stamps, column.is_valid().to_pylist(), strict=True)]  # fmt: skip


@dataclass
class SourceRows:
    """Each source's rows in one table's day, and the earliest and latest ingested_at among
    them: what the reconciliation (and the dedupe's search for lines committed twice) needs of a
    table's rows, gathered batch by batch."""

    counts: dict[str, int] = field(default_factory=dict)
    latest: dict[str, datetime] = field(default_factory=dict)
    earliest: dict[str, datetime] = field(default_factory=dict)

    def _tally(self, source: str, rows_of: int, first: datetime, last: datetime) -> None:
        self.counts[source] = self.counts.get(source, 0) + rows_of
        self.latest[source] = max(self.latest.get(source, last), last)
        self.earliest[source] = min(self.earliest.get(source, first), first)

    def add_counted(self, counted: pa.Table) -> None:
        """Rows already counted per source: a table of source_key, rows, earliest and latest
        (file_tallies.SOURCES; a source may have a row per file it is in)."""
        summed = counted.group_by("source_key", use_threads=False).aggregate(
            [("rows", "sum"), ("earliest", "min"), ("latest", "max")]
        )  # in Arrow, so that Python sees each source once
        columns = ("source_key", "rows_sum", "earliest_min", "latest_max")
        for group in zip(*(_values(summed[c]) for c in columns), strict=True):
            self._tally(*group)

    def ingested_more_than_once(self) -> set[str]:
        """The sources whose rows carry more than one ingestion time."""
        return {s for s, first in self.earliest.items() if first != self.latest[s]}

    def add(self, rows: pa.Table | pa.RecordBatch) -> None:
        if not rows.num_rows:
            return
        if isinstance(rows, pa.Table):  # batch by batch: the two columns' chunks line up so
            for batch in rows.to_batches():
                self.add(batch)
            return
        keys, times = rows["source_key"], rows["ingested_at"]
        if isinstance(keys, pa.DictionaryArray) and not keys.null_count and not times.null_count:
            self._add_encoded(keys, times)
            return
        grouped = (
            pa.table(rows.select(["source_key", "ingested_at"]))
            .group_by("source_key")
            .aggregate([([], "count_all"), ("ingested_at", "min"), ("ingested_at", "max")])
        )
        columns = ("source_key", "count_all", "ingested_at_min", "ingested_at_max")
        for group in zip(*(_values(grouped[c]) for c in columns), strict=True):
            self._tally(*group)

    def _add_encoded(self, keys: pa.DictionaryArray, times: pa.Array) -> None:
        """add() for source keys read dictionary-encoded: counted, and their first and last
        stamps taken, by their indices in numpy, without a hash table (a batch holds a few
        sources, or a compacted file many)."""
        indices = keys.indices.to_numpy()
        counts = np.bincount(indices, minlength=len(keys.dictionary))
        stamps = times.cast(pa.int64()).to_numpy()
        latest = np.full(len(counts), np.iinfo(np.int64).min)
        np.maximum.at(latest, indices, stamps)
        earliest = np.full(len(counts), np.iinfo(np.int64).max)
        np.minimum.at(earliest, indices, stamps)
        present = np.flatnonzero(counts)
        sources = keys.dictionary.take(pa.array(present)).to_pylist()
        firsts = _values(pa.array(earliest[present]).cast(times.type))
        lasts = _values(pa.array(latest[present]).cast(times.type))
        for group in zip(sources, counts[present].tolist(), firsts, lasts, strict=True):
            self._tally(*group)

    @classmethod
    def of(cls, rows: pa.Table) -> "SourceRows":
        found = cls()
        found.add(rows)
        return found


@dataclass(frozen=True)
class LakeDay:
    """One day of one fact table as its current Iceberg snapshot holds it."""

    table: str
    rows: pa.Table
    schema_problem: str | None  # how the table's schema differs from the contract's, if it does


def _day_scan(
    iceberg: Any,
    day: date,
    columns: tuple[str, ...] | None,
    sources: Iterable[str] | None = None,
) -> Any:
    from pyiceberg.expressions import And, EqualTo, In

    on_day = EqualTo(schema.PARTITION.name, day.isoformat())
    return iceberg.scan(
        row_filter=on_day if sources is None else And(on_day, In("source_key", set(sources))),
        selected_fields=columns or ("*",),
    )


def read_day(
    lake: LakeTables,
    table: str,
    day: date,
    columns: tuple[str, ...] | None = None,
    dictionary_columns: tuple[str, ...] = (),
    sources: Iterable[str] | None = None,
) -> LakeDay:
    """The day's rows, planned from the table's manifest (only that day's files are read);
    only these columns of them, if named, only the rows of these sources, if named, and the
    dictionary columns dictionary-encoded, as Parquet stores them (a day's rows repeat a few
    source keys)."""
    iceberg = lake.current(table)
    found = iceberg.schema().as_arrow()
    try:
        # One dictionary for all the files' chunks: Arrow groups by a dictionary column only so.
        scan = _day_scan(iceberg, day, columns, sources)
        rows = scan.to_arrow(dictionary_columns=dictionary_columns).unify_dictionaries()
    except (OSError, pa.ArrowInvalid) as exc:  # a data file lost or damaged: its rows are gone
        return LakeDay(table, found.empty_table(), f"unreadable: {exc}"[:500])
    return LakeDay(table, rows, quality.schema_difference(found, table))


@dataclass(frozen=True)
class ScannedDay:
    """One day of one fact table, read batch by batch and not kept: its rows per source."""

    table: str
    sources: SourceRows
    rows: int
    schema_problem: str | None
    unreadable: bool = False  # a data file could not be read: the day counts as no rows


def scan_day(
    lake: LakeTables,
    table: str,
    day: date,
    columns: tuple[str, ...],
    rules: Iterable[Callable[[pa.RecordBatch], None]],
) -> ScannedDay:
    """The day's rows, counted per source and handed to each rule batch by batch (the rules
    keep what they need of them). A day with a file that cannot be read counts as no rows, as
    read_day's does; the rules have then seen part of it."""
    iceberg = lake.current(table)
    found = iceberg.schema().as_arrow()
    sources, rows = SourceRows(), 0
    try:
        encoded = tuple(c for c in columns if c in DICTIONARY_COLUMNS)
        for batch in tables.batches_by_file(_day_scan(iceberg, day, columns), encoded):
            sources.add(batch)
            rows += batch.num_rows
            for rule in rules:
                rule(batch)
    except (OSError, pa.ArrowInvalid) as exc:  # a data file lost or damaged: its rows are gone
        return ScannedDay(table, SourceRows(), 0, f"unreadable: {exc}"[:500], unreadable=True)
    return ScannedDay(table, sources, rows, quality.schema_difference(found, table))


class _DictionaryReadNotice(logging.Filter):
    """pyiceberg warns, on every read with dictionary_columns, that Iceberg has no dictionary
    type: the encoding is what the read asked for, not a problem to log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "does not have a dictionary type" not in record.getMessage()


logging.getLogger("pyiceberg.io.pyarrow").addFilter(_DictionaryReadNotice())


def reference_ids(lake: LakeBucket, table: str, column: str) -> pa.ChunkedArray | None:
    body = lake.read_if_present(layout.reference_key(table))
    if body is None:
        return None
    return pq.read_table(pa.BufferReader(body), columns=[column])[column]


class SharedReads:
    """Reads that the checks of a range of days share, made once per check step: the reference
    ids, and the audit records read one by one (a range's days landed together, so each day's
    stretch of the log holds the others' records too; a record is never rewritten). Threads may
    share it: a read made twice at once is only waste."""

    def __init__(self, lake: LakeBucket) -> None:
        self.lake = lake
        self._ids: dict[tuple[str, str], pa.ChunkedArray | None] = {}
        self._audit: dict[str, bytes] = {}

    def audit_bodies(self, keys: list[str]) -> list[bytes]:
        missing = [key for key in keys if key not in self._audit]
        self._audit.update(zip(missing, self.lake.read_many(missing), strict=True))
        return [self._audit[key] for key in keys]

    def reference_ids(self, table: str, column: str) -> pa.ChunkedArray | None:
        if (table, column) not in self._ids:
            self._ids[table, column] = reference_ids(self.lake, table, column)
        return self._ids[table, column]


def _quarantine_lines(lake: LakeBucket, sources: list[str]) -> dict[str, int]:
    """Each source's lines in its quarantine object (0 if it has none), read concurrently."""
    bodies = lake.read_many_if_present([layout.quarantine_key(s) for s in sources])
    return {
        s: len(quarantine_records(body or b"")) for s, body in zip(sources, bodies, strict=True)
    }


def _audit_records(
    lake: LakeBucket,
    start: datetime,
    end: datetime,
    wanted: set[str],
    must_find: set[str],
    stating: date | None = None,
    shared: SharedReads | None = None,
    counted: dict[str, int] | None = None,
) -> list[tuple[str, AuditRecord]]:
    """The audit records of `wanted` source ids finished between start and end, and of any
    source whose record puts rows on `stating`; past end only wanted ones, while some of
    `must_find` is still missing (a log ingested long after it landed). The log's settled past
    comes from its digests, the rest from listing it. counted: source id -> the finish time of
    a record already counted; that record and older ones of the source are left unread."""
    counted = counted or {}
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    named = stating.isoformat() if stating else None

    def puts_rows(body: bytes) -> AuditRecord | None:
        if named is None or named.encode() not in body:  # most records never name the day
            return None
        record = AuditRecord.from_json(body)
        return record if named in record.rows_per_day else None

    entries, listed_from = audit_digest.settled_entries(lake, start_ms, end_ms, datetime.now(UTC))
    picked: list[tuple[str, AuditRecord]] = []
    for key, body in entries:  # a digest's window may start before start and end past end
        at, source = layout.audit_time_ms(key), layout.audit_source_id(key)
        if at < start_ms or at <= counted.get(source, -1):
            continue
        if source in wanted and (at <= end_ms or source in must_find):
            picked.append((key, AuditRecord.from_json(body)))
        elif at <= end_ms and (record := puts_rows(body)):
            picked.append((key, record))
    found = {layout.audit_source_id(key) for key, _ in picked}
    keys, unknown = [], []  # the unknown sources' records are read to see which days they name
    for page in lake.pages(layout.AUDIT, layout.audit_listing_start(listed_from)):
        for key in (o.key for o in page):
            at = layout.audit_time_ms(key)
            if at > end_ms and must_find <= found:
                break
            source = layout.audit_source_id(key)
            if at <= counted.get(source, -1):
                continue
            if source in wanted:
                keys.append(key)
                found.add(source)
            elif named and at <= end_ms:
                unknown.append(key)
        else:
            continue
        break
    read = shared.audit_bodies if shared else lake.read_many
    picked += [(key, AuditRecord.from_json(body))
               for key, body in zip(keys, read(keys), strict=True)]  # fmt: skip
    for key, body in zip(unknown, read(unknown), strict=True):
        if record := puts_rows(body):
            picked.append((key, record))
    return picked


def _records_at(lake: LakeBucket, finished: dict[str, int]) -> list[tuple[str, AuditRecord]]:
    """The audit records of these sources finished at these times (ms), read by their keys; one
    not in the log (a restatement, read apart) is left out."""
    keys = [layout.audit_key(ms, datetime.fromtimestamp(ms / 1000, UTC).date(), source)
            for source, ms in finished.items()]  # fmt: skip
    bodies = lake.read_many_if_present(keys)
    return [(k, AuditRecord.from_json(b)) for k, b in zip(keys, bodies, strict=True) if b]


def _restatements(lake: LakeBucket, day: date, wanted: set[str]) -> list[tuple[str, AuditRecord]]:
    """The audit records of `wanted` source ids that the dedupe of the day restated, each under
    the key it would have in the log, so a source's newest record wins wherever it is kept."""
    prefix = layout.day_prefix(layout.AUDIT_RESTATEMENTS, day)
    keys = [k for k in lake.keys(prefix) if k[len(prefix) :].removesuffix(".json") in wanted]
    records = [AuditRecord.from_json(body) for body in lake.read_many(keys)]
    return [(record.key, record) for record in records]


def _last_seen(source: str, *seen: dict[str, datetime]) -> datetime:
    return max((times[source] for times in seen if source in times),
               default=datetime.min.replace(tzinfo=UTC))  # fmt: skip


_MILLIS = pa.timestamp("ms", tz="UTC")  # ingested_at's unit; S3's times are whole seconds


class Settled(NamedTuple):
    """A source as the check that found it agreeing saw it."""

    transactions: int  # its rows on the day
    items: int
    latest: datetime | None  # the latest ingested_at of those rows
    recorded_ms: int  # when the audit record it agreed with finished (its key's time)
    quarantined: bool  # with quarantined records here: its lines are counted on every check


@dataclass(frozen=True)
class Reconciled:
    """The sources of a day that agreed with their latest audit record at a check, each with the
    rows it had then (transactions, item lines, latest ingested_at), and the time through which
    that check had read the audit log. A later check counts such a source as it was, without
    reading its record again, while its rows are the same and the log holds no newer record of
    it: its rows change when it is ingested again or deduped, and a new audit record is read
    from the log's recent past. (Not seen so: an audit record deleted from the log, which no code
    here does.) A source with quarantined records on the day has its quarantine lines counted on
    every check, against its record read again by its key.

    Also the day's raw logs as that check knew them (key -> when it landed), and when the day's
    raw prefixes were last listed whole (see raw_logs)."""

    through: datetime
    sources: dict[str, "Settled"]
    raw: dict[str, datetime] = field(default_factory=dict)
    swept: datetime | None = None

    # A row per source settled or raw log known: `settled` says which of the two it is, or both.
    _SCHEMA = pa.schema([("source_key", pa.string()), ("settled", pa.bool_()),
                         ("transactions", pa.int64()), ("items", pa.int64()),
                         ("latest", _MILLIS), ("recorded_ms", pa.int64()),
                         ("quarantined", pa.bool_()), ("landed", _MILLIS)])  # fmt: skip

    def encode(self) -> bytes:
        keys = list(self.sources.keys() | self.raw.keys())
        none = (None, None, None, None, None)
        rows = [self.sources.get(k, none) for k in keys]
        metadata = {"through": self.through.isoformat()}
        if self.swept:
            metadata["swept"] = self.swept.isoformat()
        table = pa.table({
            "source_key": keys,
            "settled": [k in self.sources for k in keys],
            "transactions": [r[0] for r in rows],
            "items": [r[1] for r in rows],
            "latest": pa.array([r[2] for r in rows], _MILLIS),
            "recorded_ms": [r[3] for r in rows],
            "quarantined": [r[4] for r in rows],
            "landed": pa.array([self.raw.get(k) for k in keys], _MILLIS),
        }, schema=self._SCHEMA.with_metadata(metadata))  # fmt: skip
        out = pa.BufferOutputStream()
        options = pa.ipc.IpcWriteOptions(compression="zstd")
        with pa.ipc.new_stream(out, table.schema, options=options) as writer:
            writer.write_table(table)
        return out.getvalue().to_pybytes()

    @classmethod
    def decode(cls, body: bytes) -> "Reconciled":
        table = pa.ipc.open_stream(pa.BufferReader(body)).read_all()
        if not table.schema.remove_metadata().equals(cls._SCHEMA):
            raise ValueError(f"reconciled sources of schema {table.schema}")
        metadata = table.schema.metadata
        through = datetime.fromisoformat(metadata[b"through"].decode())
        swept = metadata.get(b"swept")
        settled = table.filter(table["settled"])
        names = ("source_key", "transactions", "items", "latest", "recorded_ms", "quarantined")
        columns = [_values(settled[c]) for c in names]
        sources = {k: Settled(*rest) for k, *rest in zip(*columns, strict=True)}
        raw = table.filter(table["landed"].is_valid())
        landed = zip(raw["source_key"].to_pylist(), _values(raw["landed"]), strict=True)
        return cls(through, sources, dict(landed),
                   datetime.fromisoformat(swept.decode()) if swept else None)  # fmt: skip


# A producer names its logs of a day with a rising, zero-padded number (the feed's
# <producer>-<00000042>.ndjson, a backfill's history-s7-00042.ndjson): its run of keys.
_RUN = re.compile(r"(.*\D)\d+(?:\.[^/\d]*)?")


def raw_logs(
    lake: LakeBucket, day: date, known: Reconciled | None, seen: Iterable[str], now: datetime
) -> tuple[dict[str, datetime], datetime]:
    """The day's raw logs (key -> when it landed), and when its raw prefixes were last listed
    whole. Listing a day whole costs a request per 1,000 logs, so between two whole listings
    (SWEEP_EVERY) a check lists each producer's run of keys only past its newest log `known`
    (a run first seen in `seen`, the sources with rows, whole). A log named out of its run's
    order, or landed after a later one of its run (a producer uploading in parallel), or of a
    producer never ingested, is found by the next whole listing, at most SWEEP_EVERY later, if
    it is not ingested meanwhile; a log deleted, so too. (An ingested log counts as a source by
    its rows or its record, listed or not.)"""
    prefixes = tuple(layout.day_prefix(p, day) for p in (layout.RAW_HISTORY, layout.RAW_INCOMING))
    if known is None or known.swept is None or now - known.swept >= SWEEP_EVERY:
        return {o.key: o.last_modified for p in prefixes for o in lake.listing(p)}, now
    newest: dict[str, str] = {}  # run -> its newest log known ("": none, list the run whole)
    unlisted = set(seen) - known.raw.keys()
    for key, after in [*((k, k) for k in known.raw), *((k, "") for k in unlisted)]:
        if key.startswith(prefixes) and (run := _RUN.fullmatch(key)):
            newest[run[1]] = max(newest.get(run[1], after), after)
    if len(newest) > MOST_RUNS:  # a request per run: past so many, the day whole is cheaper
        return raw_logs(lake, day, None, (), now)
    raw = dict(known.raw)
    for run, after in newest.items():
        raw.update((o.key, o.last_modified) for o in lake.listing(run, after))
    return raw, known.swept


def reconciled_key(day: date) -> str:
    return f"{layout.day_checks_prefix('reconciled', day)}sources-v2.arrows"


def read_reconciled(lake: LakeBucket, day: date) -> Reconciled | None:
    """What the last check of the day kept, if it kept anything readable."""
    try:
        body = lake.read_if_present(reconciled_key(day))
        return Reconciled.decode(body) if body is not None else None
    except (OSError, ValueError, KeyError, pa.ArrowInvalid):  # a damaged one: a full check
        return None


def keep_reconciled(lake: LakeBucket, day: date, reconciled: Reconciled) -> None:
    """Not kept costs only the next check the audit records it would have skipped: logged."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        lake.write(reconciled_key(day), reconciled.encode(), "application/vnd.apache.arrow.stream")
    except (ClientError, BotoCoreError) as exc:
        logging.getLogger(__name__).warning("reconciled sources of %s not kept: %s", day, exc)


def reconcile_day(
    lake: LakeBucket,
    day: date,
    transactions: SourceRows,
    items: SourceRows,
    shared: SharedReads | None = None,
) -> quality.Reconciliation:
    """Gathers each source's audit record and its rows and quarantine lines, and adds them up."""
    return reconcile_day_since(lake, day, transactions, items, shared)[0]


def reconcile_day_since(
    lake: LakeBucket,
    day: date,
    transactions: SourceRows,
    items: SourceRows,
    shared: SharedReads | None = None,
    known: Reconciled | None = None,
    now: datetime | None = None,
) -> tuple[quality.Reconciliation, Reconciled]:
    """reconcile_day, counting the sources `known` settled as they were (see Reconciled), and
    what this check settles for the next one. now: the check's time (a test's later one)."""
    now = now or datetime.now(UTC)
    on_day = {"transactions": transactions.counts, "transaction_items": items.counts}
    # The day's own raw logs only: a neighbouring day's log that puts rows on this one (a till
    # open past midnight) is found by those rows, or by its audit record naming the day. Listing
    # the neighbours too made every check of today list all of yesterday's logs.
    before = known.sources if known else {}
    # A source settled before and now without rows is counted still: its record says what is lost.
    in_lake = {*on_day["transactions"], *on_day["transaction_items"]}
    raw, swept = raw_logs(lake, day, known, in_lake, now)
    sources = set(raw) | in_lake | set(before)
    ingested = {s: _last_seen(s, transactions.latest, items.latest)
                for s in {*transactions.latest, *items.latest}}  # fmt: skip

    def rows_of(source: str) -> tuple[int, int, datetime | None]:
        return (on_day["transactions"].get(source, 0), on_day["transaction_items"].get(source, 0),
                ingested.get(source))  # fmt: skip

    settled = {s for s in before if before[s][:3] == rows_of(s)}
    # Those with quarantine lines to count again: their records are read by key, not by reading
    # the log back to when they landed (a bad line in the morning made every check read the
    # whole day's log).
    requoted = {s for s in settled if before[s].quarantined}
    settled -= requoted
    fresh = sources - settled
    at_home = {s for s in raw if quality.home_day(s, None) == day}
    # An audit record lands just after its rows' ingested_at; for a log with no rows on the
    # day (all quarantined, or not ingested yet), after its raw object landed; for one settled
    # before and without rows now, after the rows it had. A settled source's newer record is in
    # the log since the last check's `through`.
    unsettled = fresh - requoted
    times = [ingested[s] for s in unsettled if s in ingested]
    times += [raw[s] for s in unsettled & at_home if s not in ingested]
    times += [at for s in unsettled if s not in ingested and s in before and (at := before[s][2])]
    if known and (settled or requoted):
        times += [known.through, now]
    ids = {s: layout.source_id(s) for s in sources}  # a hash each: once
    wanted = set(ids.values())
    overdue = {ids[s] for s in at_home & unsettled if now - raw[s] > IN_FLIGHT}
    # A settled source's record, and its older ones, are not read again: only a newer one.
    counted = {ids[s]: before[s].recorded_ms for s in settled | requoted}
    window = (min(times) - SLACK, max(times) + SLACK) if times else None
    records = _audit_records(lake, *window, wanted, overdue, day, shared, counted) if window else []
    renewed = {r.source_key for _, r in records}  # counted afresh, by its newer record
    fresh |= settled & renewed
    settled -= renewed
    requoted -= renewed
    records = [(key, r) for key, r in records if r.source_key not in settled]
    naming = {record.source_key for _, record in records} - sources  # and those naming the day
    fresh |= naming
    ids.update((s, layout.source_id(s)) for s in naming)
    restated = _restatements(lake, day, {ids[s] for s in fresh})
    recorded = _records_at(lake, {s: before[s].recorded_ms for s in requoted})
    latest = quality.latest_per_source(records + restated + recorded)
    quarantined = _quarantine_lines(lake, [
        s for s in sorted(fresh)
        if (audit := latest.get(s)) and audit.records_quarantined
        and quality.home_day(s, audit) == day
    ])  # fmt: skip
    counts = [
        quality.SourceCount(
            source_key=source,
            audit=(audit := latest.get(source)),
            in_flight=audit is None and now - _last_seen(source, raw, ingested) <= IN_FLIGHT,
            lake_rows={t: on_day[t][source] for t in on_day if source in on_day[t]},
            quarantined=quarantined.get(source),
        )
        for source in sorted(fresh)
    ]
    reconciled = quality.reconcile(day, counts, [before[s][:2] for s in settled])
    agreeing = {
        c.source_key: Settled(
            *rows_of(c.source_key), layout.audit_time_ms(c.audit.key), c.quarantined is not None
        )
        for c in counts
        if c.audit is not None and c.touches(day) and c.problem(day) is None
    }
    through = now - audit_digest.SETTLED  # every record finished before this is readable now
    return reconciled, Reconciled(through, {s: before[s] for s in settled} | agreeing, raw, swept)


def latest_audits(
    lake: LakeBucket,
    day: date,
    sources: set[str],
    first_ingested: datetime,
    last_ingested: datetime,
) -> dict[str, AuditRecord]:
    """source key -> its newest audit record as the day's check reads it, for sources whose rows
    on the day were ingested between the two times."""
    ids = {layout.source_id(s) for s in sources}
    found = _audit_records(lake, first_ingested - SLACK, last_ingested + SLACK, ids, ids)
    return quality.latest_per_source(found + _restatements(lake, day, ids))
