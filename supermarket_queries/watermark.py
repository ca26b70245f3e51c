"""A cheap token that changes whenever the lake's content changes, so a reader polling every
few seconds re-runs its queries only when there is something new to see.

In S3 it is built from listings only, never from object bodies: the newest audit record (the
Lambda and the backfill write one per ingested file, after its rows), read with StartAfter so
each call lists a few keys, plus the ETags of the small prefixes that no audit record covers
(reference tables, the rollup, quarantine). A local folder is stat'ed whole. Once the fact
tables are Iceberg tables, their snapshot ids replace all of this.
"""

import hashlib
import os
import time
from pathlib import Path

from lake_contract import layout
from lake_contract.s3 import LakeBucket

# Audit keys are named by finish time; a record may land up to this much after a later one
# (two Lambdas finishing together), so every call lists again from this far behind the newest.
LATE_AUDIT_MS = 10_000
# Where the first call looks for the newest audit record, nearest first.
FIRST_LOOK_BACK_MS = (60_000, 3_600_000)
UNAUDITED_PREFIXES = (
    layout.table_prefix("supermarkets"),
    layout.table_prefix("skus"),
    layout.table_prefix("sku_daily_sales"),
    layout.QUARANTINE,
)


class S3Watermark:
    """The watermark of s3://bucket: a few listings per call, whatever the lake's size."""

    def __init__(self, lake: LakeBucket) -> None:
        self._lake = lake
        self._newest_ms: int | None = None

    def _keys(self, prefix: str, start_after: str = "") -> list[tuple[str, str]]:
        return [(o.key, o.etag) for o in self._lake.listing(prefix, start_after)]

    def _recent_audit_keys(self) -> list[tuple[str, str]]:
        if self._newest_ms is not None:
            return self._keys(
                layout.AUDIT, layout.audit_listing_start(self._newest_ms - LATE_AUDIT_MS)
            )
        now_ms = int(time.time() * 1000)
        for back in FIRST_LOOK_BACK_MS:
            keys = self._keys(layout.AUDIT, layout.audit_listing_start(now_ms - back))
            if keys:
                return keys
        days = self._lake.folders(layout.AUDIT)
        return self._keys(days[-1]) if days else []

    def version(self) -> str:
        audit = self._recent_audit_keys()
        if audit:
            self._newest_ms = layout.audit_time_ms(audit[-1][0])
            start = layout.audit_listing_start(self._newest_ms - LATE_AUDIT_MS)
            audit = [(key, etag) for key, etag in audit if key > start]  # same window each call
        digest = hashlib.sha256()
        for prefix_keys in [audit, *(self._keys(p) for p in UNAUDITED_PREFIXES)]:
            for key, etag in prefix_keys:
                digest.update(f"{key}\0{etag}\n".encode())
        return digest.hexdigest()[:20]


class FolderWatermark:
    """The watermark of a local lake folder: path, size and mtime of every file under it."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def version(self) -> str:
        digest = hashlib.sha256()
        for prefix in (layout.LAKE, layout.QUARANTINE, layout.AUDIT):
            for folder, _, files in sorted(os.walk(self._root / prefix)):
                for name in sorted(files):
                    stat = os.stat(os.path.join(folder, name))
                    digest.update(f"{folder}/{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:20]
