"""The kept state of the embedded lake: moto holds S3 in memory, so on a clean stop the bucket is
mirrored to a folder, and the next `up` (without --reset) puts it back before the notification
exists, so nothing restored is ingested twice.

The mirror is incremental (only objects whose size changed are fetched) and exact (a file whose
object is gone, e.g. merged away by compaction, is deleted). Each file is written aside and
renamed, so an interrupted save leaves whole files only.
"""

import contextlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lake_contract.s3 import LakeBucket

WORKERS = 8  # moto answers requests in threads; a few in flight hide its per-request latency


@dataclass(frozen=True)
class MirrorStats:
    objects: int
    fetched: int
    deleted: int
    bytes: int


def _local_path(folder: Path, key: str) -> Path | None:
    """Where a key lives in the mirror; None for a key that could escape the folder."""
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or any(p in ("..", ".") for p in parts):
        return None
    return folder.joinpath(*parts)


Progress = Callable[[str], None]


def save(bucket: str, folder: Path, progress: Progress = lambda _: None) -> MirrorStats:
    """Mirrors the bucket into folder: fetches new or changed objects, deletes vanished ones."""
    lake = LakeBucket(bucket)
    folder.mkdir(parents=True, exist_ok=True)
    wanted: dict[Path, str] = {}
    to_fetch: list[tuple[str, Path]] = []
    total = 0
    for page in lake.pages(""):
        for stored in page:
            path = _local_path(folder, stored.key)
            if path is None:
                continue
            wanted[path] = stored.key
            total += stored.size
            if not (path.is_file() and path.stat().st_size == stored.size):
                to_fetch.append((stored.key, path))
    progress(f"saving the lake: {len(to_fetch):,} new objects of {len(wanted):,}")

    def fetch(item: tuple[str, Path]) -> None:
        key, path = item
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.part")
        aside.write_bytes(lake.read(key))
        os.replace(aside, path)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(fetch, to_fetch))
    deleted = 0
    for path in list(folder.rglob("*")):
        if path.is_file() and path not in wanted:
            path.unlink()
            deleted += 1
    return MirrorStats(len(wanted), len(to_fetch), deleted, total)


def restore(bucket: str, folder: Path, progress: Progress = lambda _: None) -> int:
    """Uploads every mirrored object back into the (new, empty) bucket; returns the count."""
    if not folder.is_dir():
        return 0
    lake = LakeBucket(bucket)
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]
    progress(f"restoring the kept lake: {len(files):,} objects")

    def upload(path: Path) -> None:
        key = path.relative_to(folder).as_posix()
        lake.write(key, path.read_bytes())

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(upload, files))
    return len(files)


def discard(folder: Path) -> None:
    """Forgets the kept lake (`up --reset`)."""
    import shutil

    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(folder)


def save_catalog(database: str, path: Path) -> dict[str, str]:
    """moto keeps Glue in memory too: the Iceberg tables' current metadata files, so the next
    `up` registers each table again on its restored files (its data and history intact)."""
    from lake_contract import tables

    catalog = tables.glue_catalog()
    locations = {
        name: catalog.load_table((database, name)).metadata_location
        for name in tables.ICEBERG_TABLES
    }
    aside = path.with_name(f".{path.name}.part")
    aside.write_text(json.dumps(locations, indent=2))
    os.replace(aside, path)
    return locations


def restore_catalog(database: str, path: Path) -> list[str]:
    """Registers the kept Iceberg tables in the (new, empty) catalog; returns their names."""
    from lake_contract import tables

    if not path.is_file():
        return []
    catalog = tables.glue_catalog()
    catalog.create_namespace_if_not_exists(database)
    locations = json.loads(path.read_text())
    for name, location in locations.items():
        catalog.register_table((database, name), location)
    return sorted(locations)


def is_plain_parquet_lake(folder: Path, catalog_file: Path) -> bool:
    """A lake kept before the fact tables were Iceberg tables: Parquet under dt= folders, and
    no catalog to register. It cannot be read as Iceberg tables."""
    return not catalog_file.is_file() and any((folder / "lake" / "transactions").glob("dt=*"))
