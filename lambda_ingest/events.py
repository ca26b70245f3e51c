"""S3 event notifications, delivered directly or wrapped in an SQS batch -> source objects."""

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


@dataclass(frozen=True)
class SourceObject:
    """One raw log to ingest, and the SQS message that announced it (None when direct)."""

    bucket: str
    key: str
    size: int | None
    event_time: str | None  # ISO-8601, as S3 stamped the notification
    message_id: str | None = None


@dataclass(frozen=True)
class Unreadable:
    """An SQS message that is not an S3 notification: it can never succeed, so it must
    fail until it reaches the dead-letter queue, where someone can look at it."""

    message_id: str
    reason: str


def _s3_records(notification: dict[str, Any], message_id: str | None) -> list[SourceObject]:
    found = []
    for record in notification.get("Records", []):
        if not str(record.get("eventName", "ObjectCreated")).startswith("ObjectCreated"):
            continue  # deletions and other events carry nothing to ingest
        s3 = record["s3"]
        found.append(
            SourceObject(
                bucket=s3["bucket"]["name"],
                key=unquote_plus(s3["object"]["key"]),  # '+' is a space, %2F a slash
                size=s3["object"].get("size"),
                event_time=record.get("eventTime"),
                message_id=message_id,
            )
        )
    return found


def _is_test_event(body: dict[str, Any]) -> bool:
    return body.get("Event") == "s3:TestEvent"


def sources(event: dict[str, Any]) -> tuple[list[SourceObject], list[Unreadable]]:
    """The objects an invocation must ingest, and the SQS messages that cannot be read."""
    records = event.get("Records", [])
    if not all(r.get("eventSource") == "aws:sqs" for r in records):
        return _s3_records(event, None), []
    objects: list[SourceObject] = []
    unreadable: list[Unreadable] = []
    for message in records:
        message_id = message["messageId"]
        try:
            body = json.loads(message["body"])
            if not isinstance(body, dict):
                raise ValueError("body is not a JSON object")
            if _is_test_event(body):
                continue  # S3 sends one when the notification is set up: nothing to do
            if "Records" not in body:
                raise ValueError("body has no Records")
            objects += _s3_records(body, message_id)
        except (ValueError, KeyError, TypeError) as exc:
            unreadable.append(Unreadable(message_id, f"not an S3 notification: {exc!r}"[:500]))
    return objects, unreadable
