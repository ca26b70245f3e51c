"""A cheap token that changes whenever the lake's content changes, so a reader polling every
few seconds re-runs its queries only when there is something new to see.

In S3 it is built from the Iceberg tables' current metadata files (every commit writes a new
one; the catalog names it) and the ETags of the few objects outside the Iceberg tables
(reference tables, quarantine): no object is read. The reference tables are HEADed by key; only
quarantine/ is listed (moto lists by scanning every key of the bucket, so a listing grows with
the lake). A local folder is stat'ed whole.
"""

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from lake_contract import layout
from lake_contract.s3 import LakeBucket

REFERENCE_KEYS = (layout.reference_key("supermarkets"), layout.reference_key("skus"))


class S3Watermark:
    """The watermark of s3://bucket: one catalog call, two HEADs and a listing of quarantine/."""

    def __init__(
        self, lake: LakeBucket, metadata_locations: Callable[[], list[str | None]]
    ) -> None:
        self._lake = lake
        self._metadata_locations = metadata_locations

    def version(self) -> str:
        digest = hashlib.sha256()
        for location in self._metadata_locations():
            digest.update(f"{location}\n".encode())
        for key in REFERENCE_KEYS:
            digest.update(f"{key}\0{self._lake.etag(key)}\n".encode())
        for stored in self._lake.listing(layout.QUARANTINE):
            digest.update(f"{stored.key}\0{stored.etag}\n".encode())
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
