"""The committer's own small files, folded as it goes, as an LSM tree merges its levels.

Every batch adds a small data file to each fact table, and a reader opens every data file of the
day it reads: between two compactions of the open day the day grew by a file a batch (300-900
in the 5 minutes between compactions at the default feed), and each cost every query ~0.3 ms.
So a process holds on to the rows of the small files it wrote lately, and once FOLD_FILES of
them, of one day and tier, are still live in the table, the next batch's commit replaces them
by one file of the next tier holding the same rows, in the same snapshot as the batch's own
file: a reader sees the day before or after, never a row missing or twice. The open day then
holds fewer than FOLD_FILES files of each tier held, plus one file per FOLD_FILES ** FOLD_TIERS
batches, whatever the compaction schedule.

Only rows this process wrote are folded, from memory: nothing is read back. A held file that
another writer replaced meanwhile (a compaction, a redelivery's replacement, the dedupe) is no
longer live in the table and is dropped, never folded. This module only keeps the books; the
committer writes the files and commits.
"""

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lake_contract import schema

FOLD_FILES = 10  # held files of one day and tier that make one file of the next tier
FOLD_TIERS = 2  # rows are held for files of tiers 0 (a batch's) and 1 (10 batches')
HOLD_ROWS = 20_000  # a larger file (a backfill's) is never held: the memory held stays small


@dataclass(frozen=True)
class HeldFile:
    """A live data file this process wrote, with the rows it holds."""

    data_file: Any  # pyiceberg's DataFile, as written
    rows: pa.Table
    day: date
    tier: int
    sources: frozenset[str]  # the source keys of its rows

    @property
    def path(self) -> str:
        return self.data_file.file_path


@dataclass(frozen=True)
class Fold:
    """Held files of one day and tier, to be replaced by one file of the next tier."""

    files: tuple[HeldFile, ...]

    @property
    def rows(self) -> pa.Table:
        return pa.concat_tables([held.rows for held in self.files])

    @property
    def tier(self) -> int:
        return self.files[0].tier + 1

    @property
    def sources(self) -> frozenset[str]:
        return frozenset().union(*(held.sources for held in self.files))


def held_file(
    data_file: Any, rows: pa.Table, tier: int, sources: frozenset[str]
) -> HeldFile | None:
    """The file as it is held for a later fold; None when it is never folded (a tier past the
    last held one, too many rows, rows of several days, or not exactly these rows)."""
    if tier >= FOLD_TIERS or not 0 < rows.num_rows <= HOLD_ROWS:
        return None
    if data_file.record_count != rows.num_rows:
        return None
    days = pc.unique(rows[schema.PARTITION.name])
    if len(days) != 1:
        return None
    return HeldFile(data_file, rows, days[0].as_py(), tier, sources)


class HeldFiles:
    """The held files of one table in one process; committers of the process share it."""

    def __init__(self) -> None:
        self._files: list[HeldFile] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)

    def add(self, held: HeldFile | None) -> None:
        if held is not None:
            with self._lock:
                self._files.append(held)

    def claim(self) -> Fold | None:
        """Takes out FOLD_FILES held files of one day and tier, the lowest tier first (oldest
        files first), for one fold; None while no day and tier has that many."""
        with self._lock:
            groups: dict[tuple[int, date], list[HeldFile]] = {}
            for held in self._files:
                groups.setdefault((held.tier, held.day), []).append(held)
            for _, files in sorted(groups.items(), key=lambda group: group[0]):
                if len(files) >= FOLD_FILES:
                    chosen = files[:FOLD_FILES]
                    taken = {held.path for held in chosen}
                    self._files = [held for held in self._files if held.path not in taken]
                    return Fold(tuple(chosen))
        return None

    def give_back(self, files: Iterable[HeldFile]) -> None:
        """Returns claimed files that were not folded (a fold abandoned or a commit failed)."""
        with self._lock:
            self._files[:0] = list(files)

    def keep_live(self, live: set[str]) -> None:
        """Drops the held files the table no longer has."""
        with self._lock:
            self._files = [held for held in self._files if held.path in live]
