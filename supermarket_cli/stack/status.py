"""The one-line live status: transactions/s, the last ingest lag, rows in the lake.

Read from the audit records (one small JSON per ingested file, keyed by finish time), so a
refresh costs one listing after the last key seen plus a GET per new file, however big the lake.
Rows are counted per source key, so a file ingested twice is counted once.
"""

import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TextIO

from lake_contract import layout
from lake_contract.audit import AuditRecord
from lake_contract.s3 import LakeBucket

RATE_WINDOW_SECONDS = 10.0


@dataclass(frozen=True)
class LakeStatus:
    transactions_per_second: float
    last_lag_seconds: float | None
    lake_rows: int
    live_files: int
    quarantined: int

    def line(self) -> str:
        lag = "-" if self.last_lag_seconds is None else f"{self.last_lag_seconds:.2f}s"
        return (
            f"{self.transactions_per_second:6.1f} txn/s | last lag {lag} | "
            f"{self.lake_rows:,} transactions in the lake | {self.quarantined:,} quarantined"
        )


class LakeWatch:
    """Follows the audit log of one bucket; `refresh()` reads only what is new."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self._lake = LakeBucket(bucket)
        self._after = ""
        self._rows: dict[str, int] = {}  # source key -> transactions written
        self._quarantined: dict[str, int] = {}
        self._recent: deque[tuple[float, int]] = deque()  # (finished epoch, rows) of live files
        self._live_files = 0
        self._last_lag: float | None = None
        self._pool = ThreadPoolExecutor(4)

    def _read(self, key: str) -> AuditRecord | None:
        try:
            return AuditRecord.from_json(self._lake.read(key))
        except Exception:  # one unreadable record must not stop the status line
            return None

    def refresh(self) -> LakeStatus:
        keys = self._lake.keys(layout.AUDIT, after=self._after)
        for record in self._pool.map(self._read, keys):
            if record is not None:
                self._count(record)
        if keys:
            self._after = keys[-1]
        now = time.time()
        while self._recent and self._recent[0][0] < now - RATE_WINDOW_SECONDS:
            self._recent.popleft()
        return LakeStatus(
            transactions_per_second=sum(r for _, r in self._recent) / RATE_WINDOW_SECONDS,
            last_lag_seconds=self._last_lag,
            lake_rows=sum(self._rows.values()),
            live_files=self._live_files,
            quarantined=sum(self._quarantined.values()),
        )

    def _count(self, record: AuditRecord) -> None:
        source = record.source_key
        self._rows[source] = record.transactions
        self._quarantined[source] = record.records_quarantined
        if source.startswith(layout.RAW_INCOMING):
            self._live_files += 1
            self._recent.append((record.finished_at.timestamp(), record.transactions))
            if record.lag_seconds is not None:
                self._last_lag = record.lag_seconds


class StatusPrinter:
    """In place with \\r on a terminal; a plain line every `every` seconds otherwise (logs)."""

    def __init__(self, out: TextIO = sys.stdout, every: float = 10.0) -> None:
        self.out: TextIO | None = out
        self.tty = out.isatty()
        self.every = every
        self._last_print = 0.0
        self._width = 0

    def show(self, line: str) -> None:
        if self.tty:
            padding = " " * max(0, self._width - len(line))
            self._write(f"\r{line}{padding}")
            self._width = len(line)
        elif time.monotonic() - self._last_print >= self.every:
            self._write(f"status: {line}\n")
            self._last_print = time.monotonic()

    def message(self, line: str) -> None:
        """A report line (a restart, a phase) that must not be overwritten by the status."""
        if self.tty and self._width:
            self._write("\r" + " " * self._width + "\r")
            self._width = 0
        self._write(f"{line}\n")

    def _write(self, text: str) -> None:
        # The terminal or pipe may be gone (a closed `| tee`, a hung-up ssh): the stack must
        # still stop its children in order, so output is dropped from then on, never raised.
        if self.out is None:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):
            self.out = None
