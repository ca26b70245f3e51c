"""`supermarket lambda-runtime`: a local stand-in for Lambda's SQS event source mapping.

Polls the ingest queue, calls the very same `lambda_handler` with SQS batch events, deletes
only what succeeded, and leaves failures to be redelivered and, after the queue's max receive
count, moved to the dead-letter queue. A stop request lets the in-flight batch finish.
"""

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from lambda_ingest.handler import lambda_handler
from supermarket_cli.defaults import DEFAULT_BATCH_SIZE, DEFAULT_WAIT_SECONDS

logger = logging.getLogger("supermarket.lambda_runtime")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class LocalContext:
    """The parts of Lambda's context object a handler may read."""

    function_name: str = "supermarket-ingest-local"
    timeout_seconds: float = 900.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000)


@dataclass
class RuntimeStats:
    batches: int = 0
    messages: int = 0
    failed: int = 0


class LocalLambdaRuntime:
    def __init__(
        self,
        queue_url: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        wait_seconds: int = DEFAULT_WAIT_SECONDS,
        handler: Handler = lambda_handler,
    ) -> None:
        if not 1 <= batch_size <= 10:
            raise ValueError(f"batch size must be 1..10 (SQS's limit), got {batch_size}")
        self.queue_url, self.batch_size, self.wait_seconds = queue_url, batch_size, wait_seconds
        self.handler = handler
        self.stats = RuntimeStats()
        self._sqs = boto3.client("sqs")
        self._queue_arn = self._sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]

    def _event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m.get("MD5OfBody"),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self._queue_arn,
                }
                for m in messages
            ]
        }

    def poll_once(self) -> int:
        """Receives one batch, runs the handler, deletes what succeeded; returns its size."""
        messages = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        try:
            response = self.handler(self._event(messages), LocalContext())
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:  # as Lambda does: an invocation error fails the whole batch
            logger.exception(json.dumps({"event": "invocation_failed", "size": len(messages)}))
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
        self.stats.batches += 1
        self.stats.messages += len(messages)
        self.stats.failed += len(failed)
        return len(messages)

    def run(self, stop: threading.Event) -> RuntimeStats:
        """Polls until stop is set; the batch in flight when it is set still completes."""
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:  # the queue itself is unreachable: wait, then try again
                logger.exception(json.dumps({"event": "poll_failed"}))
                stop.wait(1.0)
        return self.stats
