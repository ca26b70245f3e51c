"""`supermarket lambda-runtime`: a local stand-in for Lambda's SQS event source mapping.

Several pollers receive batches at once, as Lambda scales its concurrency, so a large file never
holds small live files behind it. Each calls the very same `lambda_handler` with an SQS batch
event, deletes only what succeeded, and leaves failures to be redelivered and, after the queue's
max receive count, moved to the dead-letter queue. A heartbeat extends the visibility of every
batch still running, so the queue's visibility timeout can be short: a batch whose runtime was
killed is retried within it. A stop request lets the batches in flight finish.
"""

import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from lambda_ingest import committer
from lambda_ingest.handler import lambda_handler
from supermarket_cli.defaults import DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY, DEFAULT_WAIT_SECONDS

logger = logging.getLogger("supermarket.lambda_runtime")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
FUNCTION_TIMEOUT_SECONDS = 900.0  # Lambda's longest: a batch running longer is no longer extended
# A batch waits behind another's commit at most this long, looking for more messages this often.
GATHER_LIMIT_SECONDS = 2.0
GATHER_POLL_SECONDS = 0.05


@dataclass
class LocalContext:
    """The parts of Lambda's context object a handler may read."""

    function_name: str = "supermarket-ingest-local"
    timeout_seconds: float = FUNCTION_TIMEOUT_SECONDS
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000)


@dataclass
class RuntimeStats:
    batches: int = 0
    messages: int = 0
    failed: int = 0
    extended: int = 0  # visibility extensions sent by the heartbeat


@dataclass(frozen=True)
class _Batch:
    messages: list[dict[str, Any]]
    received: float  # time.monotonic()


def _chunks(items: list[Any], size: int = 10) -> list[list[Any]]:
    """SQS's batch calls take at most 10 entries."""
    return [items[i : i + size] for i in range(0, len(items), size)]


class LocalLambdaRuntime:
    def __init__(
        self,
        queue_url: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        wait_seconds: int = DEFAULT_WAIT_SECONDS,
        handler: Handler = lambda_handler,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        if not 1 <= batch_size <= 10:
            raise ValueError(f"batch size must be 1..10 (SQS's limit), got {batch_size}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.queue_url, self.batch_size, self.wait_seconds = queue_url, batch_size, wait_seconds
        self.handler, self.concurrency = handler, concurrency
        self.stats = RuntimeStats()
        self._sqs = boto3.client("sqs")
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn", "VisibilityTimeout"]
        )["Attributes"]
        self._queue_arn = attributes["QueueArn"]
        # The queue's own setting: the heartbeat renews it, and only what it announced.
        self.visibility_timeout = int(attributes["VisibilityTimeout"])
        self._lock = threading.Lock()
        self._in_flight: dict[int, _Batch] = {}
        self._numbers = itertools.count()

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
        messages += self._gather_behind_commit(len(messages))
        number = next(self._numbers)
        with self._lock:
            self._in_flight[number] = _Batch(messages, time.monotonic())
        try:
            failed = self._invoke(messages)
            done = [m for m in messages if m["MessageId"] not in failed]
            for chunk in _chunks(done):
                self._sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                             for i, m in enumerate(chunk)],
                )  # fmt: skip
        finally:
            with self._lock:
                del self._in_flight[number]
        with self._lock:
            self.stats.batches += 1
            self.stats.messages += len(messages)
            self.stats.failed += len(failed)
        return len(messages)

    def _gather_behind_commit(self, have: int) -> list[dict[str, Any]]:
        """A group commit: while another batch of this process commits (commits are one at a
        time), the messages arriving behind it join this batch, which is invoked as soon as that
        commit ends, rather than each waiting for a commit of its own."""
        gathered: list[dict[str, Any]] = []
        deadline = time.monotonic() + GATHER_LIMIT_SECONDS
        while have + len(gathered) < self.batch_size and time.monotonic() < deadline:
            if not committer.commits_in_progress():
                break
            committer.wait_for_commits(timeout=GATHER_POLL_SECONDS)
            gathered += self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size - have - len(gathered),
                WaitTimeSeconds=0,
                AttributeNames=["All"],
            ).get("Messages", [])
        return gathered

    def _invoke(self, messages: list[dict[str, Any]]) -> set[str]:
        """The ids of the messages that failed."""
        try:
            response = self.handler(self._event(messages), LocalContext())
            return {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:  # as Lambda does: an invocation error fails the whole batch
            logger.exception(json.dumps({"event": "invocation_failed", "size": len(messages)}))
            return {m["MessageId"] for m in messages}

    def heartbeat(self) -> int:
        """Extends, by the queue's visibility timeout from now, every message of every batch
        still running and younger than the function timeout; returns the messages extended."""
        now = time.monotonic()
        with self._lock:
            running = [b for b in self._in_flight.values()
                       if now - b.received < FUNCTION_TIMEOUT_SECONDS]  # fmt: skip
        extended = 0
        for batch in running:
            for chunk in _chunks(batch.messages):
                answer = self._sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"],
                         "VisibilityTimeout": self.visibility_timeout}
                        for i, m in enumerate(chunk)
                    ],
                )  # fmt: skip
                # A message deleted since the snapshot is no longer in flight: nothing to extend.
                extended += len(answer.get("Successful", []))
        with self._lock:
            self.stats.extended += extended
        return extended

    def _poll(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:  # the queue itself is unreachable: wait, then try again
                logger.exception(json.dumps({"event": "poll_failed"}))
                stop.wait(1.0)

    def _beat(self, finished: threading.Event) -> None:
        interval = self.visibility_timeout / 3
        while not finished.wait(interval):
            try:
                self.heartbeat()
            except Exception:  # a missed beat: the next one, a third of the timeout later
                logger.exception(json.dumps({"event": "heartbeat_failed"}))

    def run(self, stop: threading.Event) -> RuntimeStats:
        """Polls with `concurrency` pollers until stop is set; the batches in flight when it is
        set still complete, and are kept invisible until they have."""
        pollers = [
            threading.Thread(target=self._poll, args=(stop,), name=f"poller-{n}")
            for n in range(self.concurrency)
        ]
        finished = threading.Event()
        beat = threading.Thread(target=self._beat, args=(finished,), name="heartbeat")
        if self.visibility_timeout > 0:  # 0: every message visible again at once anyway
            beat.start()
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.join()
        finished.set()
        if beat.is_alive():
            beat.join()
        return self.stats
