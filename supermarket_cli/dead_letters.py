"""Replaying the ingest dead-letter queue once the cause of the failures is fixed.

Each S3 notification in the dead-letter queue is sent back to the ingest queue as it is, then
deleted from the dead-letter queue. The handler replaces a source already in the lake (see the
committer), so a replay is idempotent: a message replayed twice (a crash between the send and
the delete) or a source that had landed after all leaves the lake as one ingestion does. A
message that is not an S3 notification would only fail again: it stays in the dead-letter
queue, made visible again, and is counted.
"""

import json
from dataclasses import dataclass, field

import boto3

from lambda_ingest import events

# Long enough to send and delete a batch; messages kept back are made visible again at the end.
RECEIVE_VISIBILITY_SECONDS = 60


@dataclass
class Replay:
    replayed: int = 0
    kept: int = 0  # not S3 notifications: left in the dead-letter queue
    sources: list[str] = field(default_factory=list)  # keys of the objects replayed


def dead_letter_url(queue_url: str) -> str:
    """The dead-letter queue of queue_url, from its redrive policy."""
    sqs = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
    policy = attributes.get("Attributes", {}).get("RedrivePolicy")
    if not policy:
        raise ValueError(f"{queue_url} has no dead-letter queue (no RedrivePolicy)")
    name = json.loads(policy)["deadLetterTargetArn"].rsplit(":", 1)[-1]
    return sqs.get_queue_url(QueueName=name)["QueueUrl"]


def _is_notification(body: str) -> tuple[bool, list[str]]:
    """Whether a message body is an S3 notification (or S3's test event), and its keys."""
    objects, unreadable = events.sources({"Records": [{"messageId": "m", "body": body,
                                                       "eventSource": "aws:sqs"}]})  # fmt: skip
    return not unreadable, [o.key for o in objects]


def replay_dead_letters(
    queue_url: str, dlq_url: str | None = None, limit: int | None = None
) -> Replay:
    """Moves every S3 notification from the dead-letter queue back to queue_url (at most
    limit); the rest stay where they are."""
    sqs = boto3.client("sqs")
    dlq_url = dlq_url or dead_letter_url(queue_url)
    done, kept_handles = Replay(), []
    while limit is None or done.replayed < limit:
        wanted = 10 if limit is None else min(10, limit - done.replayed)
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=wanted,
            WaitTimeSeconds=1,
            VisibilityTimeout=RECEIVE_VISIBILITY_SECONDS,
        ).get("Messages", [])
        if not messages:
            break
        replay = []
        for message in messages:
            readable, keys = _is_notification(message["Body"])
            if readable:
                replay.append(message)
                done.sources += keys
            else:
                kept_handles.append(message["ReceiptHandle"])
        if replay:
            sent = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(replay)],
            )
            if sent.get("Failed"):
                raise RuntimeError(f"sending to {queue_url} failed: {sent['Failed']}")
            # Deleted only once sent: a crash in between replays it again, which is harmless.
            sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                         for i, m in enumerate(replay)],
            )  # fmt: skip
            done.replayed += len(replay)
    for start in range(0, len(kept_handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=dlq_url,
            Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                     for i, h in enumerate(kept_handles[start : start + 10])],
        )  # fmt: skip
    done.kept = len(kept_handles)
    return done
