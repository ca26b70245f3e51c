"""The kept state of the embedded lake: moto holds S3 in memory, so on a clean stop the bucket is
mirrored to a folder, and the next `up` (without --reset) puts it back before the notification
exists, so nothing restored is ingested twice.

Every object is kept, whatever its key. A key that is a plain path keeps it (lake/transactions/
dt=.../x.parquet); any other key ('..', '.', a leading '/', '//', a name over 255 bytes, one that
is also another key's folder, or differs from another only in case) is kept under %escaped/ as
its UTF-8 in hex, which maps back to exactly that key.

The mirror is incremental (only objects whose size or time changed are fetched) and exact (a
file whose object is gone, e.g. merged away by compaction, is deleted). Each file is written
aside and renamed, so an interrupted save leaves whole files only.
"""

import contextlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from lake_contract import layout, tables
from lake_contract.s3 import LakeBucket, StoredObject

WORKERS = 8  # moto answers requests in threads; a few in flight hide its per-request latency
ESCAPED = "%escaped"  # plain names never start with '%', so this folder is never a key's
_HEX_PER_NAME = 200  # hex digits per folder name: well within any file system's 255 bytes
_NAME_BYTES = 255 - len("..part")  # the longest name Linux and macOS allow, less the part file's


@dataclass(frozen=True)
class MirrorStats:
    objects: int
    fetched: int
    deleted: int
    bytes: int


def _plain(key: str) -> bool:
    """Whether the key can be its own relative path, as it is, on Linux and macOS."""
    if layout.key_problem(key) or "\x00" in key:
        return False
    return all(
        not segment.startswith((".", "%")) and len(segment.encode("utf-8")) <= _NAME_BYTES
        for segment in key.split("/")
    )


def _escaped(key: str) -> PurePosixPath:
    """%escaped/<hex>/.../<hex>~: folders of at most 200 hex digits, the file marked by '~' (not
    a hex digit), so that no file is ever also a folder."""
    digits = key.encode("utf-8").hex()
    names = [digits[i : i + _HEX_PER_NAME] for i in range(0, len(digits), _HEX_PER_NAME)]
    return PurePosixPath(ESCAPED, *names[:-1], f"{names[-1]}~")


def relative_paths(keys: Iterable[str]) -> dict[str, PurePosixPath]:
    """Each key's path in the mirror (the inverse is key_of). A plain key that is also another
    key's folder, or that a case-insensitive file system would confuse with another, is escaped
    as well, so that every path is a file and no two are the same file."""
    keys = list(keys)
    plain = [k for k in keys if _plain(k)]
    folders = {
        "/".join(segments[:n]).casefold()
        for segments in (k.split("/") for k in plain)
        for n in range(1, len(segments))
    }
    same_file = Counter(k.casefold() for k in plain)
    kept_as_is = {k for k in plain if k.casefold() not in folders and same_file[k.casefold()] == 1}
    return {k: PurePosixPath(k) if k in kept_as_is else _escaped(k) for k in keys}


def key_of(relative: PurePosixPath) -> str:
    """The key a mirror path holds (the inverse of relative_paths)."""
    if relative.parts[0] != ESCAPED:
        return relative.as_posix()
    return bytes.fromhex("".join(relative.parts[1:]).removesuffix("~")).decode("utf-8")


Progress = Callable[[str], None]


def _mirror_files(folder: Path) -> list[Path]:
    """The mirror's files, without the ones being written aside ('.' names)."""
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]


def _clear_the_way(folder: Path, wanted: set[Path]) -> int:
    """Deletes every file no object needs, then folders left empty, so that a key that became a
    folder (or a folder that became a key) can be written; returns the files deleted."""
    deleted = 0
    for path in [p for p in folder.rglob("*") if p.is_file()]:
        if path not in wanted:
            path.unlink()
            if not path.name.startswith("."):  # an interrupted save's part file is no object
                deleted += 1
    for directory in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):  # not empty: still needed
            directory.rmdir()
    return deleted


def _nanoseconds(moment: datetime) -> int:
    """Exact, where a float timestamp could miss by its last bit."""
    since_epoch = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (
        since_epoch.days * 86_400 + since_epoch.seconds
    ) * 10**9 + since_epoch.microseconds * 1000


def _up_to_date(path: Path, stored_object: StoredObject) -> bool:
    """The file has the object's size and time (the time it was set to when fetched), so an
    object rewritten with the same size is fetched again, as rsync decides."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return False
    return (status.st_size, status.st_mtime_ns) == (
        stored_object.size,
        _nanoseconds(stored_object.last_modified),
    )


def _stored_by_path(lake: LakeBucket, folder: Path) -> dict[Path, StoredObject]:
    """Every object of the bucket, by the path of its copy in folder."""
    stored = [o for page in lake.pages("") for o in page]
    paths = relative_paths(o.key for o in stored)
    return {folder.joinpath(*paths[o.key].parts): o for o in stored}


def _take_time(path: Path, stored_object: StoredObject) -> None:
    """The copy gets the object's time, which _up_to_date compares."""
    moment = _nanoseconds(stored_object.last_modified)
    os.utime(path, ns=(moment, moment))


def save(bucket: str, folder: Path, progress: Progress = lambda _: None) -> MirrorStats:
    """Mirrors the bucket into folder: fetches new or changed objects, deletes vanished ones."""
    lake = LakeBucket(bucket)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = _stored_by_path(lake, folder)
    deleted = _clear_the_way(folder, set(wanted))
    to_fetch = [(path, o) for path, o in wanted.items() if not _up_to_date(path, o)]
    progress(f"saving the lake: {len(to_fetch):,} new objects of {len(wanted):,}")

    def fetch(item: tuple[Path, StoredObject]) -> None:
        path, stored_object = item
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.part")
        aside.write_bytes(lake.read(stored_object.key))
        _take_time(aside, stored_object)
        os.replace(aside, path)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(fetch, to_fetch))
    return MirrorStats(len(wanted), len(to_fetch), deleted, sum(o.size for o in wanted.values()))


def restore(bucket: str, folder: Path, progress: Progress = lambda _: None) -> int:
    """Uploads every mirrored object back into the (new, empty) bucket; returns the count."""
    if not folder.is_dir():
        return 0
    lake = LakeBucket(bucket)
    files = _mirror_files(folder)
    progress(f"restoring the kept lake: {len(files):,} objects")

    def upload(path: Path) -> None:
        key = key_of(PurePosixPath(path.relative_to(folder).as_posix()))
        lake.write(key, path.read_bytes())

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(upload, files))
    # The uploads have new times: the files take them, so that the next save fetches only what
    # changed after the restore, not every object again.
    for path, stored_object in _stored_by_path(lake, folder).items():
        if path.is_file() and path.stat().st_size == stored_object.size:
            _take_time(path, stored_object)
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
    path.parent.mkdir(parents=True, exist_ok=True)  # a first `up` has no kept lake yet
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


def columns_not_kept(folder: Path, catalog_file: Path) -> dict[str, list[str]]:
    """Columns schema.py defines that a kept Iceberg table lacks (a column added since the lake
    was kept), per table. Such a table's next commit would be refused, so it cannot be kept."""
    if not catalog_file.is_file():
        return {}
    missing = {}
    for name, location in json.loads(catalog_file.read_text()).items():
        key = urlparse(location).path.lstrip("/")
        try:
            metadata = json.loads((folder / relative_paths([key])[key]).read_text())
        except (OSError, ValueError):
            continue  # not readable here: registering it says what is wrong
        current = next(s for s in metadata["schemas"]
                       if s["schema-id"] == metadata["current-schema-id"])  # fmt: skip
        kept = {f["name"] for f in current["fields"]}
        if name in tables.ICEBERG_TABLES:
            lacks = [c for c in tables.arrow_schema(name).names if c not in kept]
            if lacks:
                missing[name] = lacks
    return missing
