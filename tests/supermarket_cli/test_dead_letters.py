"""Replaying the dead-letter queue once the cause is fixed: the sources land once, a replay
repeated (or a message replayed twice) changes nothing, and a message that is not an S3
notification stays in the dead-letter queue; on a moto server."""

import collections
import threading

import boto3
import pytest

from lambda_ingest.handler import lambda_handler
from supermarket_cli import main
from supermarket_cli.dead_letters import dead_letter_url, replay_dead_letters
from supermarket_cli.lambda_runtime import LocalLambdaRuntime
from supermarket_cli.local_aws import provision_ingest
from supermarket_cli.processes import wait_until
from tests.factories import ndjson, record
from tests.moto_server import iceberg_lake, table_rows

BUCKET = "replay-lake"
KEYS = [f"raw/incoming/dt=2026-03-01/till-{n}.ndjson" for n in range(3)]


@pytest.fixture
def stack(monkeypatch):
    with iceberg_lake(monkeypatch, BUCKET) as endpoint:
        yield endpoint


def _depth(url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def _running(queue_url: str, handler, until, timeout: float, describe: str) -> LocalLambdaRuntime:
    runtime = LocalLambdaRuntime(queue_url, wait_seconds=1, handler=handler)
    stop = threading.Event()
    poller = threading.Thread(target=runtime.run, args=(stop,))
    poller.start()
    try:
        wait_until(until, timeout, 0.1, describe)
    finally:
        stop.set()
        poller.join(timeout=15)
    return runtime


def _broken(event, context):
    raise RuntimeError("a bug, fixed in the next deployment")


def test_dead_letters_replayed_once_fixed_land_once_and_a_replay_again_changes_nothing(stack):
    queues = provision_ingest(BUCKET, max_receive_count=2, visibility_timeout=3)
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    for n, key in enumerate(KEYS):
        s3.put_object(Bucket=BUCKET, Key=key, Body=ndjson(record(f"T-{n}"), record(f"U-{n}")))
    sqs.send_message(QueueUrl=queues.queue_url, MessageBody="not an S3 notification")
    # Three logs, S3's own test event (sent when the notification was set) and the poison.
    _running(queues.queue_url, _broken, lambda: _depth(queues.dead_letter_url) == 5, 60,
             "the five messages were not dead-lettered")  # fmt: skip
    assert _depth(queues.queue_url) == 0
    assert dead_letter_url(queues.queue_url) == queues.dead_letter_url

    first = replay_dead_letters(queues.queue_url)

    assert (first.replayed, first.kept, sorted(first.sources)) == (4, 1, KEYS)
    again = replay_dead_letters(queues.queue_url)  # nothing left to replay but the poison
    assert (again.replayed, again.kept) == (0, 1)
    # A replay that stopped between its send and its delete sends a message a second time.
    waiting = sqs.receive_message(QueueUrl=queues.queue_url, MaxNumberOfMessages=10)["Messages"]
    (till_0,) = [m["Body"] for m in waiting if "till-0" in m["Body"]]
    sqs.change_message_visibility_batch(
        QueueUrl=queues.queue_url,
        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                 for i, m in enumerate(waiting)],
    )  # fmt: skip
    sqs.send_message(QueueUrl=queues.dead_letter_url, MessageBody=till_0)
    assert main.main(["replay-dlq", "--queue-url", queues.queue_url]) == 0

    _running(queues.queue_url, lambda_handler, lambda: _depth(queues.queue_url) == 0, 60,
             "the replayed messages were not ingested")  # fmt: skip

    ids = collections.Counter(table_rows("transactions")["transaction_id"].to_pylist())
    assert ids == {f"{p}-{n}": 1 for p in "TU" for n in range(3)}
    assert table_rows("transaction_items").num_rows == 12
    assert _depth(queues.dead_letter_url) == 1  # the poison message, still there to look at
