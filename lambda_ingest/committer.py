"""One Iceberg commit per table for a batch of converted sources: the Lambda's and the backfill's
only way into the fact tables.

A source delivered again must add nothing and lose nothing. Before committing, the batch's
source keys are looked up in the transaction_items table, the one committed first, so a batch
that failed between its two commits is found too (its manifest prunes by the full bounds of
source_key, so this reads only files that may hold them): a source already there has its old
rows deleted in the same commit that appends its new ones, so a redelivery or a rewritten log
replaces itself; a new source is a plain append, the fast and common case. The Lambda first
sets aside the sources already in the lake exactly as it would write them (unchanged_sources),
since a delete rewrites whole data files under the lock. Items are
committed before transactions, so a reader that looks up transactions first never sees a
transaction without its items.

A commit refused because another committer got in first (Glue's optimistic concurrency in AWS,
where no lock orders the Lambdas) is retried from the lookup, never replayed as it was: a
source two Lambdas received at once lands once.

The rows are written as data files before the lock is taken (stage), so a committer can also
write its sources one at a time as they are converted and commit them together later, holding
only the files' statistics meanwhile: the backfill does, so a day's rows are never all in memory.
"""

import contextlib
import functools
import random
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lake_contract import tables
from lake_contract.tables import LakeTables
from lambda_ingest.data_files import write_data_files
from lambda_ingest.folding import Fold, HeldFiles, held_file
from lambda_ingest.transform import TransformResult

# Written first: see the module doc.
COMMIT_ORDER = ("transaction_items", "transactions")
_writers = ThreadPoolExecutor(max_workers=len(COMMIT_ORDER), thread_name_prefix="data-files")
_committers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="items-commit")


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
_caches = threading.Lock()  # committers of one process may run at once (no commit lock)
_MANIFESTS_CACHED = 4_096


def _source_bounds(manifest: Any, io: Any, field_id: int) -> list[tuple[bytes, bytes, str]]:
    """(lower, upper, data file) of every live data file the manifest lists."""
    path = manifest.manifest_path
    with _caches:
        known = _MANIFEST_BOUNDS.get(path)
    if known is not None:
        return known
    bounds = [
        (entry.data_file.lower_bounds[field_id], entry.data_file.upper_bounds[field_id],
         entry.data_file.file_path)
        for entry in manifest.fetch_manifest_entry(io, discard_deleted=True)
    ]  # fmt: skip
    with _caches:
        _MANIFEST_BOUNDS[path] = bounds
        if len(_MANIFEST_BOUNDS) > _MANIFESTS_CACHED:
            _MANIFEST_BOUNDS.popitem(last=False)
    return bounds


_MANIFEST_LISTS: OrderedDict[str, list[Any]] = OrderedDict()


def _manifests(snapshot: Any, io: Any) -> list[Any]:
    """The snapshot's manifests; its manifest list is read once (it never changes either)."""
    path = snapshot.manifest_list
    with _caches:
        known = _MANIFEST_LISTS.get(path)
    if known is None:
        known = list(snapshot.manifests(io))
        with _caches:
            _MANIFEST_LISTS[path] = known
            while len(_MANIFEST_LISTS) > 64:
                _MANIFEST_LISTS.popitem(last=False)
    return known


def sources_present(lake: LakeTables, keys: list[str], name: str = COMMIT_ORDER[0]) -> set[str]:
    """Which of these sources already have rows in the table."""
    return set().union(*_files_holding(lake.table(name), keys).values())


def _files_holding(table: Any, keys: list[str]) -> dict[str, frozenset[str]]:
    """The data files of the table's snapshot (as loaded) holding rows of these sources, each
    with the ones it holds: the files whose source_key bounds take in a key (full bounds, UTF-8
    order), then their column."""
    snapshot = table.current_snapshot()
    if not keys or snapshot is None:
        return {}
    field_id = table.schema().find_field("source_key").field_id
    wanted = sorted(k.encode() for k in keys)
    candidates = {
        path
        for manifest in _manifests(snapshot, table.io)
        for low, high, path in _source_bounds(manifest, table.io, field_id)
        if any(low <= key <= high for key in wanted)
    }
    holding = {path: _sources_in_file(table, path) & set(keys) for path in sorted(candidates)}
    return {path: held for path, held in holding.items() if held}


# Data files never change either: the source keys each one holds, read once per container
# (and known without reading for the files this container wrote), so the check reads only
# files another committer or compaction added since.
_FILE_SOURCES: OrderedDict[str, frozenset[str]] = OrderedDict()
_FILES_CACHED = 16_384


def _remember_sources(path: str, sources: frozenset[str]) -> frozenset[str]:
    with _caches:
        _FILE_SOURCES[path] = sources
        _FILE_SOURCES.move_to_end(path)
        while len(_FILE_SOURCES) > _FILES_CACHED:
            _FILE_SOURCES.popitem(last=False)
    return sources


def _sources_in_file(table: Any, path: str) -> frozenset[str]:
    import pyarrow.parquet as pq

    with _caches:
        known = _FILE_SOURCES.get(path)
    if known is not None:
        return known
    column = pq.read_table(table.io.new_input(path).open(), columns=["source_key"])
    return _remember_sources(path, frozenset(pc.unique(column["source_key"]).to_pylist()))


# What orders a source's rows for a comparison: its transaction ids are unique (the transform
# rejects an id repeated in a file), and so are their line numbers.
_ROW_ORDER = {
    "transactions": ["transaction_id"],
    "transaction_items": ["transaction_id", "line_number"],
}


@dataclass(frozen=True)
class Unchanged:
    """Sources a batch found in the lake already, as it would write them, and the snapshot of
    each table they were found in."""

    sources: frozenset[str] = frozenset()
    snapshots: dict[str, int] = field(default_factory=dict)


def unchanged_sources(lake: LakeTables, results: list[tuple[str, TransformResult]]) -> Unchanged:
    """The sources whose rows the tables hold exactly as these results would write them,
    `ingested_at` aside: logs delivered again, unchanged. They need no commit. A replace would
    delete and add the same rows, and a delete rewrites every data file holding them: the open
    day's compacted files, read and written whole under the commit lock while every other
    batch waits. This reads outside the lock, and only the row groups that hold the sources,
    on tables loaded afresh for it (the committers' own are refreshed only under the lock); a
    batch of new sources only, the common case, costs no read. A source found changed, or not
    found, is committed, and the commit's own lookup replaces it if it is there by then."""
    keys = [key for key, _ in results]
    if not sources_present(lake, keys):  # none of them in the tables as last loaded
        return Unchanged()
    fresh = LakeTables(lake.catalog, lake.database)
    same = sources_present(fresh, keys)
    by_key = dict(results)
    snapshots: dict[str, int] = {}
    for name in COMMIT_ORDER:
        table = fresh.table(name)
        if not same or table.current_snapshot() is None:
            return Unchanged()
        snapshots[name] = table.current_snapshot().snapshot_id
        columns = [c for c in tables.arrow_schema(name).names if c != "ingested_at"]
        found = _rows_of(table, _files_holding(table, sorted(same)), columns, name)
        for key in sorted(same):
            new = tables.as_table_rows(name, getattr(by_key[key], name)).select(columns)
            old = found.filter(pc.equal(found["source_key"], key))
            if not _same_rows(new, old, _ROW_ORDER[name]):
                same.discard(key)
    return Unchanged(frozenset(same), snapshots) if same else Unchanged()


def _rows_of(
    table: Any, holding: dict[str, frozenset[str]], columns: list[str], name: str
) -> pa.Table:
    """The rows of these files' sources (file -> the sources wanted from it), as `name`'s
    columns. A row group is read only when its source_key column holds one of them, and only up
    to its last row of them (compacted files are in ingestion order: a source's rows are close)."""
    import pyarrow.parquet as pq

    shape = pa.schema([tables.arrow_schema(name).field(column) for column in columns])
    parts = [shape.empty_table()]
    for path, keys in holding.items():
        wanted = pa.array(sorted(keys))
        with table.io.new_input(path).open() as stream:
            parquet = pq.ParquetFile(stream, read_dictionary=["source_key"])
            for group in range(parquet.num_row_groups):
                sources = parquet.read_row_group(group, columns=["source_key"])["source_key"]
                mask = _of_sources(sources, wanted)
                hits = pc.indices_nonzero(mask)
                if not len(hits):
                    continue
                last, offset = hits[-1].as_py(), 0
                for batch in parquet.iter_batches(_BATCH_ROWS, [group], columns):
                    rows = pa.Table.from_batches([batch]).select(columns)
                    parts.append(rows.filter(mask.slice(offset, len(rows))).cast(shape))
                    offset += len(rows)
                    if offset > last:
                        break
    return pa.concat_tables(parts)


_BATCH_ROWS = 64 * 1024


def _of_sources(column: pa.ChunkedArray, wanted: pa.Array) -> pa.Array:
    """Which rows of a dictionary-encoded source_key column are of the wanted sources: looked
    up in each chunk's dictionary, not in every row's string."""
    masks = [pc.take(pc.is_in(chunk.dictionary, wanted), chunk.indices) for chunk in column.chunks]
    return pa.concat_arrays(masks) if masks else pa.array([], pa.bool_())


def _same_rows(new: pa.Table, old: pa.Table, order: list[str]) -> bool:
    if new.num_rows != old.num_rows:
        return False
    by = [(column, "ascending") for column in order]
    return new.sort_by(by).equals(old.sort_by(by))


@functools.cache
def _transaction_class() -> type:
    """A transaction that works out its staged metadata once per staged change: pyiceberg's own
    recomputes it, with a deep copy of the whole metadata, on each of ~17 reads a commit (30%
    of a commit's CPU, measured). What it hands out is never mutated (frozen models)."""
    from pyiceberg.table import Transaction

    class StagedOnce(Transaction):
        _staged: tuple[Any, tuple[Any, ...], Any] | None = None

        @property
        def table_metadata(self) -> Any:
            staged = self._staged
            base, updates = self._table.metadata, self._updates
            if staged is None or staged[0] is not base or staged[1] is not updates:
                staged = (base, updates, super().table_metadata)
                self._staged = staged
            return staged[2]

        def _register_snapshot_producer(self, producer: Any) -> None:
            # pyiceberg would replay a conflicting append onto the new metadata, skipping the
            # source lookup: two deliveries of one source racing would both land. Without
            # producers a conflict raises, and commit_sources looks the sources up again.
            pass

    return StagedOnce


# Commits of this process waiting for the commit lock or holding it: the local runtime gathers
# the messages that arrive meanwhile into the next batch (a group commit), see lambda_runtime.
_committers_waiting = 0
_commit_done = threading.Condition()


@contextlib.contextmanager
def _committing() -> Iterator[None]:
    global _committers_waiting
    with _commit_done:
        _committers_waiting += 1
    try:
        yield
    finally:
        with _commit_done:
            _committers_waiting -= 1
            _commit_done.notify_all()


def commits_in_progress() -> int:
    """Commits of this process waiting for the commit lock or holding it."""
    return _committers_waiting


def wait_for_commits(timeout: float) -> bool:
    """Waits until no commit of this process is in progress, or timeout; True if none is."""
    with _commit_done:
        return _commit_done.wait_for(lambda: _committers_waiting == 0, timeout)


@dataclass(frozen=True)
class Staged:
    """Sources' rows written as each table's data files, in no snapshot yet: what stage()
    writes outside the commit lock and commit_staged() commits (a file of a commit that never
    happens is an orphan, which housekeeping removes)."""

    files: dict[str, list[Any]]  # table -> pyiceberg DataFiles
    sources: dict[str, frozenset[str]]  # table -> the source keys with rows in it
    rows: dict[str, pa.Table] | None = None  # kept to fold the files later; None: never folded

    @property
    def keys(self) -> list[str]:
        return sorted(frozenset().union(*self.sources.values()))


def stage(
    lake: LakeTables, results: list[tuple[str, TransformResult]], foldable: bool = True
) -> Staged:
    """Writes the rows of every (source key, transform result) as data files of both tables at
    once. foldable keeps the rows, so a later commit may fold the files (small batches only:
    the Lambda's); a backfill stages each source on its own and keeps nothing but the files."""
    rows = {name: _rows(name, results) for name in COMMIT_ORDER}
    sources = {name: frozenset(key for key, r in results if getattr(r, name).num_rows)
               for name in COMMIT_ORDER}  # fmt: skip
    written = _writers.map(lambda n: write_data_files(lake.table(n), rows[n]), COMMIT_ORDER)
    files = dict(zip(COMMIT_ORDER, written, strict=True))
    for name, table_files in files.items():
        if len(table_files) == 1:  # one file (one day): it holds every source with rows
            _remember_sources(table_files[0].file_path, sources[name])
    return Staged(files, sources, rows if foldable else None)


def combined(staged: list[Staged]) -> Staged:
    """Several stagings as one, committed together (never folded)."""
    files = {name: [f for s in staged for f in s.files[name]] for name in COMMIT_ORDER}
    sources = {name: frozenset().union(*(s.sources[name] for s in staged)) for name in COMMIT_ORDER}
    return Staged(files, sources)


def commit_sources(
    lake: LakeTables, results: list[tuple[str, TransformResult]], summary: dict[str, str]
) -> Committed:
    """Commits the rows of every (source key, transform result) in one snapshot per table: the
    data files of both tables are written first, at once and outside the commit lock (stage),
    then committed (commit_staged)."""
    return commit_staged(lake, stage(lake, results), summary)


def commit_staged(lake: LakeTables, staged: Staged, summary: dict[str, str]) -> Committed:
    """Commits staged files in one snapshot per table. The lock is held only to look the
    sources up and commit."""
    if not any(staged.files.values()):
        return Committed()
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            return _commit_once(lake, staged, summary)
        except _conflict() as conflict:
            # Another committer got in first (Glue's optimistic check, in AWS): look the
            # sources up again on the new snapshot and commit again. If our items commit
            # landed and our transactions commit did not, our sources are now present: the
            # items files are deleted and added again in one snapshot, never doubled.
            if attempt == COMMIT_ATTEMPTS - 1:
                raise conflict
            time.sleep(random.uniform(0.05, 0.2) * 2 ** min(attempt, 4))
    raise AssertionError("unreachable")


# Glue refuses a commit made on a stale version; each refusal is retried from the lookup.
COMMIT_ATTEMPTS = 10


def _conflict() -> type[Exception]:
    from pyiceberg.exceptions import CommitFailedException

    return CommitFailedException


def _commit_once(lake: LakeTables, staged: Staged, summary: dict[str, str]) -> Committed:
    keys = staged.keys
    held = staged.rows is not None
    folds = {name: _held(lake, name).claim() if held else None for name in COMMIT_ORDER}
    settled: set[str] = set()  # tables whose commit reached the catalog

    def write_fold(name: str) -> list[Any]:
        """The claimed fold's file, written outside the lock."""
        fold = folds[name]
        return write_data_files(lake.table(name), fold.rows) if fold else []

    def commit(name: str, after: Future | None) -> int | None:
        snapshot = _commit_table(lake.table(name), staged.files[name], present, properties,
                                 after, folds[name], folded[name])  # fmt: skip
        settled.add(name)
        return snapshot

    try:
        folded = {name: [] for name in COMMIT_ORDER}
        if any(folds.values()):
            folded = dict(zip(COMMIT_ORDER, _writers.map(write_fold, COMMIT_ORDER), strict=True))
        with _committing(), tables.commit_lock():
            for name in COMMIT_ORDER:
                lake.current(name)
            # Looked up in the items table, committed first: a source whose transactions are in
            # has its items in (no basket is empty), and one whose items commit landed but whose
            # transactions commit failed is found too, so its redelivery replaces, never doubles.
            present = sorted(sources_present(lake, keys, COMMIT_ORDER[0]))
            properties = {**summary, "supermarket.sources": str(len(keys))}
            for name in COMMIT_ORDER:
                folds[name] = _still_foldable(lake, name, folds[name], present)
            # Both commits are staged at once (their manifests written concurrently); the
            # transactions commit reaches the catalog only once the items commit has.
            first, second = COMMIT_ORDER
            pending = _committers.submit(commit, first, None)
            try:
                last = commit(second, pending)
            except BaseException:
                # Not out of the lock while the items commit may still be reaching the catalog.
                with contextlib.suppress(Exception):
                    pending.result()
                raise
            snapshots = {first: pending.result(), second: last}
    finally:
        for name in COMMIT_ORDER:
            fold = folds[name]
            if fold is not None and name not in settled:  # claimed, not folded: held again
                _held(lake, name).give_back(fold.files)
    for name in COMMIT_ORDER:
        _hold(lake, name, staged, folds[name], folded[name])
    return Committed(
        {name: s for name, s in snapshots.items() if s is not None},
        frozenset(present),
    )


# The files each process's LakeTables wrote and may fold, per table (see lambda_ingest.folding).
_HELD: weakref.WeakKeyDictionary[LakeTables, dict[str, HeldFiles]] = weakref.WeakKeyDictionary()


def _held(lake: LakeTables, name: str) -> HeldFiles:
    with _caches:
        return _HELD.setdefault(lake, {}).setdefault(name, HeldFiles())


def _live_files(table: Any) -> set[str]:
    """The data files of the table's current snapshot (from the manifests read for lookups)."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return set()
    field_id = table.schema().find_field("source_key").field_id
    return {path for manifest in _manifests(snapshot, table.io)
            for _, _, path in _source_bounds(manifest, table.io, field_id)}  # fmt: skip


def _still_foldable(
    lake: LakeTables, name: str, fold: Fold | None, present: list[str]
) -> Fold | None:
    """The claimed fold, if every file of it is still live in the table as just refreshed; else
    None, with its live files held again (and the files another writer replaced dropped). A
    batch that replaces sources folds nothing: its delete may rewrite held files."""
    if fold is None:
        return None
    live = _live_files(lake.table(name))
    if not present and all(held.path in live for held in fold.files):
        return fold
    held = _held(lake, name)
    held.give_back(f for f in fold.files if f.path in live)
    held.keep_live(live)
    return None


def _hold(
    lake: LakeTables, name: str, staged: Staged, fold: Fold | None, folded: list[Any]
) -> None:
    """After a commit: the small files it wrote, and its fold's file, held for later folds."""
    held, written = _held(lake, name), staged.files[name]
    if len(written) == 1 and staged.rows is not None:  # one file (one day): all its rows
        held.add(held_file(written[0], staged.rows[name], 0, staged.sources[name]))
    if fold is not None and len(folded) == 1:
        _remember_sources(folded[0].file_path, fold.sources)
        held.add(held_file(folded[0], fold.rows, fold.tier, fold.sources))


def _commit_table(
    table: Any,
    data_files: list[Any],
    present: list[str],
    properties: dict[str, str],
    after: Future | None,
    fold: Fold | None = None,
    folded: list[Any] | None = None,
) -> int | None:
    """One table's commit: the sources already present out, the new files in, a fold's held
    files replaced by the file of their rows, and, when due, the oldest snapshots expired, all
    in one snapshot; its id (None: nothing to commit). With `after`, the commit reaches the
    catalog only once `after` has (and never if it failed)."""
    from pyiceberg.expressions import In
    from pyiceberg.table.update.snapshot import ExpireSnapshots

    if not data_files and not present and fold is None:
        if after is not None:
            after.result()
        return None
    with _transaction_class()(table) as commit:
        if old := _expired(table):  # in this commit: no extra commit, no spike every 20th
            ExpireSnapshots(commit).by_ids(old).commit()
        if present:  # a redelivery or a rewritten log: its old rows out, in one commit
            commit.delete(In("source_key", present), snapshot_properties=properties)
        update = commit.update_snapshot(snapshot_properties=properties)
        if fold is not None:  # exact files out, the same rows in (refused if one is gone)
            with update.overwrite() as overwrite:
                for held in fold.files:
                    overwrite.delete_data_file(held.data_file)
                for data_file in [*(folded or []), *data_files]:
                    overwrite.append_data_file(data_file)
        else:
            with update.merge_append() as append:
                for data_file in data_files:
                    append.append_data_file(data_file)
        if after is not None:
            after.result()  # raises if it failed: this commit is then abandoned too
    return table.current_snapshot().snapshot_id


def _expired(table: Any) -> list[int]:
    """The snapshots to expire now: all but the newest SNAPSHOTS_KEPT, once there are twice
    as many (one expiry per SNAPSHOTS_KEPT commits, not one per commit)."""
    snapshots = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms)
    if len(snapshots) <= 2 * tables.SNAPSHOTS_KEPT:
        return []
    return [s.snapshot_id for s in snapshots[: -tables.SNAPSHOTS_KEPT]]
