"""What the fact-table checks compute: pure functions over Arrow tables and audit records, and
tallies that take a day's item lines batch by batch (LineTotals, UnknownIds).

No Dagster and no S3 here: checks.py reads one day of the lake and hands it to these.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake_contract import money, schema, tables
from lake_contract.arrays import contiguous
from lake_contract.audit import AuditRecord

SAMPLE = 5  # offending ids or keys shown in a check's metadata
_RAW_DAY = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/")


@dataclass(frozen=True)
class Offenders:
    """How many rows break a rule, and a few of the ids that do."""

    count: int
    sample: list[str]

    @property
    def none(self) -> bool:
        return self.count == 0

    def __add__(self, other: "Offenders") -> "Offenders":
        """Both counts, and the sample that the rows of both together would give."""
        return Offenders(self.count + other.count, sorted({*self.sample, *other.sample})[:SAMPLE])


def _sample(values: pa.Array | pa.ChunkedArray) -> list[str]:
    return sorted(pc.unique(values).to_pylist())[:SAMPLE]


def duplicate_ids(ids: pa.ChunkedArray | pa.Array) -> Offenders:
    """Rows whose id another row already has (n copies of an id count n - 1)."""
    counts = pa.table({"id": ids}).group_by("id").aggregate([("id", "count")])
    repeated = counts.filter(pc.greater(counts["id_count"], 1))
    extra = pc.sum(pc.subtract(repeated["id_count"], 1)).as_py() or 0
    return Offenders(extra, _sample(repeated["id"]))


def unknown_ids(ids: pa.ChunkedArray | pa.Array, known: pa.ChunkedArray | pa.Array) -> Offenders:
    """Rows whose id is not among the reference table's ids."""
    unknown = pc.filter(ids, pc.invert(pc.is_in(ids, value_set=pa.chunked_array(known))))
    return Offenders(len(unknown), _sample(unknown))


class UnknownIds:
    """unknown_ids over a day read batch by batch."""

    def __init__(self, column: str, known: pa.ChunkedArray | pa.Array) -> None:
        self.column, self.known = column, pa.chunked_array(known)
        self.found = Offenders(0, [])

    def add(self, rows: pa.Table | pa.RecordBatch) -> None:
        ids = rows[self.column]
        for chunk in ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids]:
            if pa.types.is_dictionary(chunk.type):
                # Read as Parquet stores it: each distinct id is looked up once, not per row.
                if not chunk.null_count and pc.all(pc.is_in(chunk.dictionary, self.known)).as_py():
                    continue  # pc.all of an empty dictionary is None: an empty chunk goes on
                chunk = chunk.dictionary_decode()
            self.found += unknown_ids(chunk, self.known)


@dataclass(frozen=True)
class TotalsReport:
    mismatched: Offenders  # total_amount differs from the sum of its items
    without_items: Offenders  # a transaction with no item rows
    orphan_items: Offenders  # item rows whose transaction is not in the day's transactions

    @property
    def passed(self) -> bool:
        return self.mismatched.none and self.without_items.none and self.orphan_items.none


class LineTotals:
    """sum(quantity * unit_price) of each transaction_id's item lines, in integer cents, taken
    batch by batch: a day's 2M lines are never held at once, only a sum and a count per run of
    an id's lines."""

    def __init__(self) -> None:
        self._sums: list[pa.Table] = []

    def add(self, items: pa.Table | pa.RecordBatch) -> None:
        """Sums each run of lines with one transaction_id: the transform writes a basket's
        lines together, so a run is mostly a whole transaction, and finding runs compares
        neighbours instead of hashing every line (a third of a day's checks at 10M). A
        transaction whose lines are apart has several runs; against() adds them up."""
        if not items.num_rows:
            return
        ids = contiguous(items["transaction_id"])
        cents = pc.multiply_checked(
            pc.cast(items["quantity"], pa.int64()), money.to_cents(items["unit_price"])
        )
        cents = pc.fill_null(contiguous(cents), 0)  # as a grouped sum skips a null
        self._sums.append(basket_runs(ids, cents.to_numpy(zero_copy_only=False)))

    def against(self, transactions: pa.Table) -> TotalsReport:
        """Each total_amount against its lines' sum, to the cent.

        When the runs are the baskets in their order (as a scan of a day reads both tables), each
        sum is compared with its own row. Otherwise each id's sum finds its transaction's row
        with one hash lookup, then numpy adds the sums up by row number (an id whose lines are
        in two places has two): no join."""
        ids = transactions["transaction_id"]
        sums = pa.concat_tables(self._sums) if self._sums else pa.table({
            "transaction_id": pa.array([], ids.type), "cents_sum": pa.array([], pa.int64()),
            "count_all": pa.array([], pa.int64())})  # fmt: skip
        totals = money.to_cents(transactions["total_amount"]).to_numpy()
        if sums.num_rows:
            # A basket split across two batches is two runs, next to each other: one again.
            ids_of_runs = sums["transaction_id"].combine_chunks()
            sums = basket_runs(ids_of_runs, sums["cents_sum"].to_numpy(),
                               sums["count_all"].to_numpy())  # fmt: skip
        if sums.num_rows == transactions.num_rows and sums["transaction_id"].equals(ids):
            # The lines in the order of the baskets, as the transform writes both tables and a
            # scan reads them: each basket's sum is at its own row, and nothing is looked up.
            return TotalsReport(
                mismatched=_offenders(ids, pa.array(totals != sums["cents_sum"].to_numpy())),
                without_items=Offenders(0, []),
                orphan_items=Offenders(0, []),
            )
        row = pc.index_in(sums["transaction_id"], value_set=contiguous(ids))
        orphans = pc.is_null(row)
        orphan_ids = pc.filter(sums["transaction_id"], orphans)
        orphan_lines = pc.sum(pc.filter(sums["count_all"], orphans)).as_py() or 0
        found = pc.is_valid(row)
        rows = pc.filter(row, found).to_numpy()
        totals_of_lines = np.zeros(transactions.num_rows, np.int64)
        np.add.at(totals_of_lines, rows, pc.filter(sums["cents_sum"], found).to_numpy())
        has_items = np.zeros(transactions.num_rows, bool)
        has_items[rows] = True
        return TotalsReport(
            mismatched=_offenders(ids, pa.array(has_items & (totals != totals_of_lines))),
            without_items=_offenders(ids, pa.array(~has_items)),  # a repeated id's later copies
            orphan_items=Offenders(orphan_lines, _sample(orphan_ids)),
        )


@dataclass(frozen=True)
class HashedReport:
    """transaction_id_unique and total_matches_items counted on ids' 64-bit hashes (kept file
    tallies hold hashes, not ids): settles both when it passes; when it does not, the ids
    themselves are read to name the offenders (two ids with one hash count as a duplicate)."""

    duplicates: int  # transaction rows whose id hash an earlier row has
    mismatched: int
    without_items: int
    orphan_lines: int

    @property
    def ids_unique(self) -> bool:
        return self.duplicates == 0

    @property
    def totals_agree(self) -> bool:
        return not (self.duplicates or self.mismatched or self.without_items or self.orphan_lines)


def hashed_report(transactions: pa.Table, items: pa.Table) -> HashedReport:
    """Both tables as file_tallies.BASKETS: transactions a row per transaction row, items a row
    per run of an id's lines (an id may have several runs)."""
    # Both sides sorted by hash (the order among equal hashes does not matter: a repeated hash
    # fails the report, and the ids are read): searchsorted then walks the rows in order, 4x
    # faster than with a day's runs in file order (0.44 s for 1M runs).
    hashes = transactions["id_hash"].to_numpy()
    order = np.argsort(hashes)
    hashes, totals = hashes[order], transactions["cents"].to_numpy()[order]
    duplicates = int(np.count_nonzero(hashes[1:] == hashes[:-1]))
    item_hashes = items["id_hash"].to_numpy()
    by_hash = np.argsort(item_hashes)
    run_hashes, run_cents = item_hashes[by_hash], items["cents"].to_numpy()[by_hash]
    row = np.minimum(np.searchsorted(hashes, run_hashes), max(len(hashes) - 1, 0))
    found = hashes[row] == run_hashes if len(hashes) else np.zeros(len(run_hashes), bool)
    orphan_lines = int(items["lines"].to_numpy()[by_hash[~found]].sum())
    rows, cents = row[found], run_cents[found]  # rows ascending: a transaction's runs together
    sums = np.zeros(len(hashes), np.int64)
    has_items = np.zeros(len(hashes), bool)
    if len(rows):
        starts = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
        sums[rows[starts]] = np.add.reduceat(cents, starts)
        has_items[rows[starts]] = True
    return HashedReport(
        duplicates=duplicates,
        mismatched=int(np.count_nonzero(has_items & (totals != sums))),
        without_items=int(np.count_nonzero(~has_items)),
        orphan_lines=orphan_lines,
    )


def unknown_codes(codes: pa.Table, known: pa.ChunkedArray | pa.Array) -> Offenders:
    """unknown_ids over codes already counted (file_tallies.CODES: a code and its rows); a null
    code is not unknown, as unknown_ids leaves a null id out."""
    code = codes["code"]
    known_ids = pa.chunked_array(known)
    known_or_null = pc.or_kleene(pc.is_null(code), pc.is_in(code, value_set=known_ids))
    unknown = codes.filter(pc.invert(known_or_null))
    return Offenders(pc.sum(unknown["rows"]).as_py() or 0, _sample(unknown["code"]))


def basket_runs(ids: pa.Array, cents: np.ndarray, lines: np.ndarray | None = None) -> pa.Table:
    """One row per run of neighbours with one transaction_id: their cents and their lines (one
    each, unless counted already) summed. A null id compares as unknown: its line is a run of
    its own (an orphan, later)."""
    changes = pc.fill_null(pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1)), True)
    starts = np.flatnonzero(np.concatenate(([True], changes.to_numpy(zero_copy_only=False))))
    return pa.table({
        "transaction_id": ids.take(pa.array(starts)),
        "cents_sum": np.add.reduceat(cents, starts),
        "count_all": np.diff(starts, append=len(ids)) if lines is None
                     else np.add.reduceat(lines, starts),
    })  # fmt: skip


def _offenders(ids: pa.ChunkedArray, mask: pa.Array) -> Offenders:
    picked = pc.filter(ids, mask)
    return Offenders(len(picked), _sample(picked))


def schema_difference(found: pa.Schema, table: str) -> str | None:
    """How an Iceberg table's schema (as Arrow) differs from the contract's, or None when it
    does not: names, types and nullability (descriptions are docs, not compared)."""
    expected = tables.iceberg_schema(table).as_arrow().remove_metadata()
    found = found.remove_metadata()
    if found.equals(expected):
        return None
    wanted = {f.name: f for f in expected}
    got = {f.name: f for f in found}
    problems = [f"missing {n}" for n in wanted if n not in got]
    problems += [f"unexpected {n}" for n in got if n not in wanted]
    problems += [
        f"{n}: {got[n].type}{'' if got[n].nullable else ' not null'} "
        f"instead of {f.type}{'' if f.nullable else ' not null'}"
        for n, f in wanted.items()
        if n in got and not got[n].equals(f)
    ]
    if not problems:
        problems = ["columns out of order: " + ", ".join(found.names)]
    return "; ".join(problems)


# --- reconciliation: raw records = lake rows + quarantined records -----------------------------


def home_day(source_key: str, audit: AuditRecord | None) -> date | None:
    """The day a source's quarantined records are counted under: its raw key's dt=, else the
    first day it wrote rows into (rejects have no trustworthy timestamp of their own)."""
    found = _RAW_DAY.search("/" + source_key)
    if found:
        return date.fromisoformat(found.group(1))
    return audit.home_day() if audit else None


def latest_per_source(records: Iterable[tuple[str, AuditRecord]]) -> dict[str, AuditRecord]:
    """The newest audit record of each source, from (audit key, record) pairs: a reprocessed
    source has several, and audit keys sort by finish time."""
    latest: dict[str, tuple[str, AuditRecord]] = {}
    for key, record in records:
        source = record.source_key
        if source not in latest or key > latest[source][0]:
            latest[source] = (key, record)
    return {source: record for source, (_, record) in latest.items()}


@dataclass
class SourceCount:
    """One source's share of one day, as its audit record states it and as the lake holds it."""

    source_key: str
    audit: AuditRecord | None
    in_flight: bool = False  # landed moments ago: the Lambda may not have finished it yet
    lake_rows: dict[str, int] = field(default_factory=dict)  # table -> rows present on the day
    quarantined: int | None = None  # lines present in its quarantine object, when counted

    def touches(self, day: date) -> bool:
        """Whether the source counts on `day`: at home there, or with rows there, in the lake or
        by its audit record."""
        stated = self.audit.rows_per_day.get(day.isoformat()) if self.audit else None
        return bool(home_day(self.source_key, self.audit) == day or self.lake_rows or stated)

    def problem(self, day: date) -> str | None:
        """Why this source does not reconcile on `day`, or None."""
        if self.audit is None:
            return None if self.in_flight else "no audit record: never ingested, or rows orphaned"
        per_day = self.audit.rows_per_day
        stated = sum(d.get("transactions", 0) for d in per_day.values())
        if self.audit.raw_records != stated + self.audit.records_quarantined:
            return (
                f"audit says {self.audit.raw_records} read but "
                f"{stated} written + {self.audit.records_quarantined} quarantined"
            )
        expected = per_day.get(day.isoformat(), {})
        differing = [
            f"{table}: {have} rows in the lake, audit says {want}"
            for table in sorted(schema.INGESTED_TABLES)  # a set: its order changes per process
            if (want := expected.get(table, 0)) != (have := self.lake_rows.get(table, 0))
        ]
        if differing:
            return "; ".join(differing)
        if self.quarantined is not None and self.quarantined != self.audit.records_quarantined:
            stated_rejects = self.audit.records_quarantined
            return f"{self.quarantined} quarantine lines, audit says {stated_rejects}"
        return None


@dataclass(frozen=True)
class Reconciliation:
    day: date
    raw_records: int  # audit: the day's rows as records_read splits them, + quarantined at home
    lake_rows: int  # transactions rows present under dt=day
    quarantined_records: int  # lines present in the quarantine objects of sources at home here
    items_expected: int
    items_in_lake: int
    sources: int
    in_flight: list[str]
    disagreeing: dict[str, str]  # source key -> what is wrong (all of them)

    @property
    def passed(self) -> bool:
        balanced = self.raw_records == self.lake_rows + self.quarantined_records
        return balanced and not self.disagreeing and self.items_expected == self.items_in_lake


def reconcile(
    day: date, sources: Iterable[SourceCount], settled: Iterable[tuple[int, int]] = ()
) -> Reconciliation:
    """Adds up one day: every record a source read is a row on some day or a quarantine line.

    A source straddling midnight contributes to each day exactly the rows its audit's
    rows_per_day puts there; its quarantined records belong to its home day only. settled: the
    (transactions, item lines) of sources an earlier check found agreeing with their audit
    record, without quarantined records here, and unchanged since (lake_day.Reconciled): each
    counts as its record said, which is what its rows are.
    """
    raw = lake = quarantined = items_expected = items_in_lake = 0
    disagreeing: dict[str, str] = {}
    in_flight: list[str] = []
    counted = 0
    for transactions, items in settled:
        counted += 1
        raw += transactions
        lake += transactions
        items_expected += items
        items_in_lake += items
    for source in sources:
        if not source.touches(day):
            continue  # a neighbouring day's source that never touched this one
        stated = source.audit.rows_per_day.get(day.isoformat(), {}) if source.audit else {}
        at_home = home_day(source.source_key, source.audit) == day
        counted += 1
        if source.audit is None and source.in_flight:
            in_flight.append(source.source_key)  # its rows count once its audit record lands
            continue
        raw += stated.get("transactions", 0)
        items_expected += stated.get("transaction_items", 0)
        lake += source.lake_rows.get("transactions", 0)
        items_in_lake += source.lake_rows.get("transaction_items", 0)
        if at_home and source.audit is not None:
            raw += source.audit.records_quarantined
            quarantined += source.quarantined or 0
        problem = source.problem(day)
        if problem:
            disagreeing[source.source_key] = problem
    return Reconciliation(
        day=day,
        raw_records=raw,
        lake_rows=lake,
        quarantined_records=quarantined,
        items_expected=items_expected,
        items_in_lake=items_in_lake,
        sources=counted,
        in_flight=sorted(in_flight),
        disagreeing=dict(sorted(disagreeing.items())),
    )
