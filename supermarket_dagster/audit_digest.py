"""The audit log's past, read once: a digest object holds every audit record finished in one
window of time (a minute; or an hour, made of its minutes' digests), written by the first reader
that needs the window once it has ended.

The day checks reconcile each source of a day with its latest audit record. Read one GET per
source, the open day's check grew with the day (3.8 s at 600 live files, 14.8 s at 2,400, one
file every 0.5 s at the default feed). Through digests a check of a whole day reads at most 23
hour digests, 59 minute digests and the records of the last minute or so.

A window is digested once it ended OVERLAP_MS ago, the lag the audit log's sensor allows a
record to land out of order (audit_log). Until SETTLED has passed since its end the window is
listed again on every read and its digest completed with any record that landed late; after
that the digest is trusted as it is: the handler writes an audit record right after the commit
whose time it carries, within its invocation, and the function's timeout is 120 s
(infra/template.yaml), so nothing lands in a window later. (The local runtime and the backfill
write records as promptly but enforce no such bound.) A digest is derived, never the truth:
deleting one costs only the time to write it again, and a damaged one is written again.
"""

import contextlib
import gzip
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from lake_contract import layout
from lake_contract.s3 import LakeBucket
from supermarket_dagster.audit_log import OVERLAP_MS

WINDOWS_MS = (60_000, 3_600_000)  # a minute, an hour: each divides the next and a day
SETTLED = timedelta(seconds=150)  # past the function's 120 s timeout, with a margin

Entry = tuple[str, bytes]  # an audit key and its record's JSON
_log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


def _each(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    # A pool per call, as lake_contract.s3 does: an hour's minutes nest reads inside this one.
    items = list(items)
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(min(8, len(items)), thread_name_prefix="digest") as pool:
        return list(pool.map(work, items))


def plan(start_ms: int, end_ms: int, settled_ms: int) -> tuple[list[tuple[int, int]], int]:
    """The (length, start) windows that cover [start_ms, end_ms) as far as the log has settled,
    the fewest of them; and where they stop, from which the log is still to be listed. A window
    longer than a minute is taken only when it is wanted whole."""
    windows = []
    at = start_ms - start_ms % WINDOWS_MS[0]
    while at < end_ms:
        fitting = [
            w
            for w in WINDOWS_MS
            if at % w == 0 and at + w <= settled_ms and (w == WINDOWS_MS[0] or at + w <= end_ms)
        ]
        if not fitting:
            break
        windows.append((max(fitting), at))
        at += max(fitting)
    return windows, at


def encode(entries: list[Entry]) -> bytes:
    lines = []
    for key, body in entries:
        if "\t" in key or "\n" in key:
            raise ValueError(f"{key!r}: not an audit key")
        # JSON has no raw line break inside a string, so one between tokens is only spacing.
        line = body.replace(b"\r", b" ").replace(b"\n", b" ")
        lines.append(key.encode() + b"\t" + line + b"\n")
    return gzip.compress(b"".join(lines), compresslevel=1)


def decode(body: bytes) -> list[Entry]:
    entries = []
    for line in gzip.decompress(body).splitlines():
        key, tab, record = line.partition(b"\t")
        if not tab:
            raise ValueError("a digest line without its key")
        entries.append((key.decode(), record))
    return entries


def listed(lake: LakeBucket, start_ms: int, end_ms: int) -> list[str]:
    """The audit keys finished in [start_ms, end_ms), from the log itself."""
    keys = []
    for page in lake.pages(layout.AUDIT, layout.audit_listing_start(start_ms)):
        for key in (o.key for o in page):
            if layout.audit_time_ms(key) >= end_ms:
                return keys
            keys.append(key)
    return keys


class _Reader:
    """The windows of one read: which digests exist (listed beforehand: a GET of a missing key
    can be an AccessDenied instead of a 404 where the reader may list only some prefixes), from
    when a window is trusted as digested, and the audit keys of the minutes to be listed, from
    one listing of the log."""

    def __init__(self, lake: LakeBucket, present: set[str], trusted_ms: int) -> None:
        self.lake, self.present, self.trusted_ms = lake, present, trusted_ms
        self.listed: dict[int, list[str]] = {}

    def settled(self, window_ms: int, start_ms: int) -> bool:
        return start_ms + window_ms <= self.trusted_ms

    def trusted(self, window_ms: int, start_ms: int) -> bool:
        present = layout.audit_digest_key(window_ms, start_ms) in self.present
        return present and self.settled(window_ms, start_ms)

    def minutes_to_list(self, window_ms: int, start_ms: int) -> list[int]:
        if self.trusted(window_ms, start_ms):
            return []
        if window_ms == WINDOWS_MS[0]:
            return [start_ms]
        inner = WINDOWS_MS[WINDOWS_MS.index(window_ms) - 1]
        return [m for at in range(start_ms, start_ms + window_ms, inner)
                for m in self.minutes_to_list(inner, at)]  # fmt: skip

    def list_minutes(self, minutes: list[int]) -> None:
        """One listing of the log from the first minute to the end of the last."""
        if not minutes:
            return
        wanted = set(minutes)
        for key in listed(self.lake, min(minutes), max(minutes) + WINDOWS_MS[0]):
            minute = layout.audit_time_ms(key) // WINDOWS_MS[0] * WINDOWS_MS[0]
            if minute in wanted:
                self.listed.setdefault(minute, []).append(key)
        for minute in wanted:
            self.listed.setdefault(minute, [])

    def window(self, window_ms: int, start_ms: int, keep: bool = True) -> list[Entry]:
        """Every audit record of one window that ended before the listing's overlap, from its
        digest, written first if missing (keep); a window not yet trusted is listed again and
        its digest completed with any record that landed late."""
        key = layout.audit_digest_key(window_ms, start_ms)
        entries = None
        if key in self.present:
            # A damaged digest is written again below.
            with contextlib.suppress(OSError, EOFError, ValueError, UnicodeDecodeError):
                entries = decode(self.lake.read(key))
        if entries is not None and self.trusted(window_ms, start_ms):
            return entries
        level = WINDOWS_MS.index(window_ms)
        if level == 0:
            have = dict(entries or [])
            keys = self.listed.get(start_ms)
            if keys is None:  # a damaged digest the planned listing did not cover
                keys = listed(self.lake, start_ms, start_ms + window_ms)
            missing = [k for k in keys if k not in have]
            read = self.lake.read_many(missing)
            found = sorted([*have.items(), *zip(missing, read, strict=True)])
        else:
            inner = WINDOWS_MS[level - 1]
            # A settled window's digest is read whole from now on: its parts need no digests
            # (a week of the log read at once writes 168, not 10,248).
            keep_parts = not self.settled(window_ms, start_ms)
            parts = _each(lambda at: self.window(inner, at, keep_parts),
                          range(start_ms, start_ms + window_ms, inner))  # fmt: skip
            found = [entry for part in parts for entry in part]
        if keep and found != entries:
            self._keep(key, found)
        return found

    def _keep(self, key: str, entries: list[Entry]) -> None:
        """Writes a digest; a write that fails costs only the next reader's time, so it is
        logged, never raised into the check that read the records."""
        try:
            self.lake.write(key, encode(entries), "application/gzip")
        except (ClientError, BotoCoreError) as exc:
            _log.warning("audit digest %s not written: %s", key, exc)


def settled_entries(
    lake: LakeBucket, start_ms: int, end_ms: int, now: datetime
) -> tuple[list[Entry], int]:
    """The audit records finished in [start_ms, end_ms) as far as the log has settled by now, from
    digests, and the time from which the log must still be listed (records at or past it are not
    in the entries; those before start_ms in the first window are, for the caller to drop)."""
    now_ms = int(now.timestamp() * 1000)
    windows, listed_from = plan(start_ms, end_ms, now_ms - OVERLAP_MS)
    present: set[str] = set()
    if windows:
        first = datetime.fromtimestamp(windows[0][1] / 1000, UTC).date()
        last = datetime.fromtimestamp((listed_from - 1) / 1000, UTC).date()
        for n in range((last - first).days + 1):
            present |= set(lake.keys(layout.day_prefix(layout.AUDIT_DIGESTS, first + timedelta(n))))
    reader = _Reader(lake, present, now_ms - int(SETTLED.total_seconds() * 1000))
    reader.list_minutes([m for w in windows for m in reader.minutes_to_list(*w)])
    parts = _each(lambda w: reader.window(*w), windows)
    return [entry for part in parts for entry in part], max(listed_from, start_ms)
