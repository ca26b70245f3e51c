"""Following the audit log: the records the Lambda and the backfill wrote since a sensor's cursor.

Audit keys sort by finish time, so the cursor is the newest key seen, never a wall-clock time.
Concurrent Lambdas can land a record a moment after a later-stamped one has been listed, so
each tick re-lists a short overlap window and skips the keys it has already reported (kept in
the cursor): no record missed, none counted twice, and no full rescan. Shared by the live
tables' sensor and the maintenance sensor.
"""

import json

from lake_contract import layout
from lake_contract.audit import AuditRecord
from lake_contract.s3 import LakeBucket

MAX_RECORDS_PER_TICK = 1_000  # bounds a tick after a long pause; the next tick goes on
OVERLAP_MS = 10_000  # how far out of order audit records may land and still be seen


def new_audit_keys(lake: LakeBucket, cursor: str | None, limit: int) -> tuple[list[str], str]:
    """Audit keys not reported yet, in key order, and the cursor to store after them."""
    state = json.loads(cursor) if cursor else {"last": "", "recent": []}
    recent = set(state["recent"])
    after = ""
    if state["last"]:
        after = layout.audit_listing_start(layout.audit_time_ms(state["last"]) - OVERLAP_MS)
    listed = lake.keys(layout.AUDIT, after=after, limit=limit + len(recent))
    new = [key for key in listed if key not in recent][:limit]
    if not new:
        return [], cursor or ""
    newest = max([state["last"], *new])
    horizon = layout.audit_time_ms(newest) - OVERLAP_MS
    keep = sorted(k for k in recent | set(new) if layout.audit_time_ms(k) >= horizon)
    return new, json.dumps({"last": newest, "recent": keep})


def from_live_feed(record: AuditRecord) -> bool:
    """Whether the record is the Lambda's, for a log under raw/incoming/ (the only prefix that
    notifies it); the others are the history backfill's, whose Dagster runs report their own
    days."""
    return record.source_key.startswith(layout.RAW_INCOMING)


def read_records(lake: LakeBucket, keys: list[str]) -> list[AuditRecord]:
    return [AuditRecord.from_json(body) for body in lake.read_many(keys)]
