"""Where things live in the lake bucket; every key is derived here and nowhere else.

Output keys are a pure function of the source key, so processing a source twice
overwrites its own objects instead of adding new ones (S3 events are at-least-once).
"""

import hashlib
import re
from datetime import UTC, date, datetime

RAW = "raw/"  # what the Lambda reads: history and the live feed
RAW_HISTORY = "raw/history/"
RAW_INCOMING = "raw/incoming/"
LAKE = "lake/"
QUARANTINE = "quarantine/"
AUDIT = "audit/"
AUDIT_DIGESTS = "dagster/audit-digests/"  # Dagster's cache of the audit log's settled past
DAY_CHECKS = "dagster/day-checks/"  # what the day checks keep between runs, per kind and day
AUDIT_RESTATEMENTS = "audit-restated/"  # a source's audit as the dedupe of a day left it

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_LOG_SUFFIXES = re.compile(r"(\.ndjson|\.jsonl|\.json|\.gz)+$")


def source_id(source_key: str) -> str:
    """A short, path-safe name unique to one source object: readable stem plus a key hash."""
    stem = _LOG_SUFFIXES.sub("", source_key.rsplit("/", 1)[-1])
    digest = hashlib.sha256(source_key.encode("utf-8")).hexdigest()[:16]
    return f"{_UNSAFE.sub('_', stem)[:64]}-{digest}"


def day_checks_prefix(kind: str, day: date) -> str:
    """Where the day checks keep one kind of thing (a table's file tallies, the reconciled
    sources) for one day."""
    return day_prefix(f"{DAY_CHECKS}{kind}/", day)


def table_prefix(table: str) -> str:
    return f"{LAKE}{table}/"


def day_prefix(prefix: str, day: date) -> str:
    return f"{prefix}dt={day.isoformat()}/"


def table_key(table: str, day: date, source_key: str) -> str:
    """The one Parquet object holding a source's rows of `table` for one UTC day."""
    return f"{day_prefix(table_prefix(table), day)}{source_id(source_key)}.parquet"


def rollup_key(table: str, day: date) -> str:
    """The one Parquet object of a table rolled up per day; a re-run overwrites it."""
    return f"{day_prefix(table_prefix(table), day)}{table}.parquet"


def quarantine_key(source_key: str) -> str:
    """The one NDJSON object holding a source's rejected records, each with its reason."""
    return f"{QUARANTINE}{source_id(source_key)}.ndjson"


def reference_key(table: str) -> str:
    """The single Parquet object of an unpartitioned reference table."""
    return f"{table_prefix(table)}{table}.parquet"


OUTPUT_PREFIXES = (LAKE, QUARANTINE, AUDIT)  # the only prefixes the Lambda writes


def key_problem(key: str) -> str | None:
    """Why a key is not a plain path ('.' or '..' segments, empty segments, a leading '/'),
    which a layer that normalises paths could turn into another key; None for a plain one.

    S3 and botocore keep such keys as written; the lake neither writes nor reads them anyway.
    """
    if not key:
        return "is empty"
    if key.startswith("/"):
        return "starts with '/'"
    segments = key.split("/")
    if "" in segments:
        return "has an empty segment ('//' or a trailing '/')"
    if any(segment in (".", "..") for segment in segments):
        return "has a '.' or '..' segment"
    return None


def audit_key(finished_ms: int, finished_day: date, source_key: str) -> str:
    """Audit records form an append-only log of every ingestion, keyed by finish time, so
    listing after the last key seen returns exactly the records written since."""
    return f"{day_prefix(AUDIT, finished_day)}{finished_ms:013d}-{source_id(source_key)}.json"


def audit_time_ms(key: str) -> int:
    """The finish time an audit key was written under (the inverse of audit_key)."""
    return int(key.rsplit("/", 1)[-1][:13])


def audit_listing_start(finished_ms: int) -> str:
    """A key that sorts before every audit key finished at or after finished_ms."""
    day = datetime.fromtimestamp(finished_ms / 1000, UTC).date()
    return f"{day_prefix(AUDIT, day)}{finished_ms:013d}"


def audit_digest_key(window_ms: int, start_ms: int) -> str:
    """The digest of every audit record finished in [start_ms, start_ms + window_ms)."""
    day = datetime.fromtimestamp(start_ms / 1000, UTC).date()
    return f"{day_prefix(AUDIT_DIGESTS, day)}{start_ms:013d}-{window_ms // 1000}s.ndjson.gz"


def audit_restatement_key(day: date, source_key: str) -> str:
    """A source's audit record restated by the dedupe of one day of its rows. Kept beside the
    log, not in it: the log's past is digested for good once settled, and a record written into
    it later would never be read (supermarket_dagster.audit_digest)."""
    return f"{day_prefix(AUDIT_RESTATEMENTS, day)}{source_id(source_key)}.json"


def audit_source_id(key: str) -> str:
    """The source_id an audit key was written for (the inverse of audit_key's name part)."""
    return key.rsplit("/", 1)[-1][14:].removesuffix(".json")


# A compacted object's name ends in a 4-digit part count, never in the 16 hex digits that end
# every source_id, so the two kinds of object in a day can never be mistaken for each other.
_COMPACTED = re.compile(r"compacted-([0-9a-f]{16})-(\d{4})-of-(\d{4})\.parquet")


def compacted_key(table: str, day: date, generation: str, part: int, parts: int) -> str:
    """Part `part` of `parts` objects into which one compaction (its `generation`, a digest of
    the objects it merged) rewrote a closed day of `table`."""
    name = f"compacted-{generation}-{part:04d}-of-{parts:04d}.parquet"
    return f"{day_prefix(table_prefix(table), day)}{name}"


def parse_compacted_key(key: str) -> tuple[str, int, int] | None:
    """(generation, part, parts) of a compacted object's key; None for any other key."""
    match = _COMPACTED.fullmatch(key.rsplit("/", 1)[-1])
    if match is None:
        return None
    return match.group(1), int(match.group(2)), int(match.group(3))
