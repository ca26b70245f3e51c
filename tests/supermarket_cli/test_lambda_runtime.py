"""The local Lambda runtime against a moto server: S3 -> SQS -> runtime -> handler -> lake."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote_plus

import boto3
import pytest

from lambda_ingest.handler import lambda_handler
from supermarket_cli.lambda_runtime import LocalLambdaRuntime
from supermarket_cli.local_aws import provision_ingest
from supermarket_cli.processes import wait_until
from tests.factories import ndjson, record
from tests.moto_server import iceberg_lake, table_rows

BUCKET = "runtime-lake"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack(monkeypatch):
    with iceberg_lake(monkeypatch, BUCKET) as endpoint:
        yield endpoint


def lake_keys(prefix):
    listing = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for o in listing.get("Contents", [])]


def queue_depth(url):
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_a_put_object_becomes_lake_rows_through_the_queue(stack):
    queues = provision_ingest(BUCKET)
    runtime = LocalLambdaRuntime(queues.queue_url, wait_seconds=1)
    stop = threading.Event()
    poller = threading.Thread(target=runtime.run, args=(stop,))
    poller.start()
    try:
        s3 = boto3.client("s3")
        s3.put_object(Bucket=BUCKET, Key="raw/incoming/dt=2026-03-01/a b.ndjson",
                      Body=ndjson(record("a"), record("b")))  # fmt: skip
        s3.put_object(Bucket=BUCKET, Key="raw/history/dt=2026-03-01/h.ndjson", Body=b"x")

        wait_until(lambda: lake_keys("audit/"), 15, 0.05, "no audit record")
        rows = table_rows("transactions").to_pylist()
        assert sorted(r["transaction_id"] for r in rows) == ["a", "b"]
        assert {r["source_key"] for r in rows} == {"raw/incoming/dt=2026-03-01/a b.ndjson"}
        assert table_rows("transaction_items").num_rows == 4
    finally:
        stop.set()
        poller.join(timeout=10)
    assert not poller.is_alive()
    assert len(lake_keys("audit/")) == 1  # history is not a live event, outputs never notify
    assert queue_depth(queues.queue_url) == 0


def test_a_poison_message_ends_in_the_dead_letter_queue(stack):
    queues = provision_ingest(BUCKET, max_receive_count=2, visibility_timeout=1)
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=queues.queue_url, MessageBody="not an S3 notification")
    runtime = LocalLambdaRuntime(queues.queue_url, wait_seconds=1)
    stop = threading.Event()
    poller = threading.Thread(target=runtime.run, args=(stop,))
    poller.start()
    try:
        wait_until(
            lambda: queue_depth(queues.dead_letter_url) == 1, 20, 0.05, "nothing dead-lettered"
        )
    finally:
        stop.set()
        poller.join(timeout=10)
    body = sqs.receive_message(QueueUrl=queues.dead_letter_url)["Messages"][0]["Body"]
    assert body == "not an S3 notification"
    assert runtime.stats.failed >= 2


def test_the_runtime_process_stops_cleanly_on_sigterm_after_its_batch(stack):
    queues = provision_ingest(BUCKET)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "supermarket_cli.main",
            "lambda-runtime",
            "--queue-url",
            queues.queue_url,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        boto3.client("s3").put_object(
            Bucket=BUCKET, Key="raw/incoming/dt=2026-03-01/a.ndjson", Body=ndjson(record("a"))
        )
        wait_until(lambda: lake_keys("audit/"), 15, 0.05, "no audit record")
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "lambda-runtime stopped: " in out
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [e["event"] for e in logged] == ["ingested"]
    assert logged[0]["transactions"] == 1


def test_provisioning_again_with_other_settings_updates_the_queue(stack):
    first = provision_ingest(BUCKET, max_receive_count=3)

    second = provision_ingest(BUCKET, max_receive_count=5, visibility_timeout=7)

    assert second == first
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=second.queue_url, AttributeNames=["All"]
    )["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 5
    assert attributes["VisibilityTimeout"] == "7"
    rules = boto3.client("s3").get_bucket_notification_configuration(Bucket=BUCKET)
    (queue,) = rules["QueueConfigurations"]
    (rule,) = queue["Filter"]["Key"]["FilterRules"]
    assert (rule["Name"].lower(), rule["Value"]) == ("prefix", "raw/incoming/")


def in_flight(url):
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def drop_test_event(url):
    """Deletes S3's s3:TestEvent, sent when the notification was set up, so a test's batches
    hold its own files only."""
    sqs = boto3.client("sqs")
    (message,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    assert json.loads(message["Body"])["Event"] == "s3:TestEvent"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def keys_of(event):
    """The source keys an SQS batch names (S3's test event names none)."""
    bodies = [json.loads(r["body"]) for r in event["Records"]]
    return [unquote_plus(n["s3"]["object"]["key"]) for b in bodies for n in b.get("Records", [])]


def test_a_small_file_lands_while_a_slow_batch_is_still_running(stack):
    # given: a handler that holds any batch naming "slow" until the small file has landed
    queues = provision_ingest(BUCKET)
    small_landed, slow_started = threading.Event(), threading.Event()

    def handler(event, context):
        if any("slow" in key for key in keys_of(event)):
            slow_started.set()
            assert small_landed.wait(20), "the small file waited behind the slow batch"
        return lambda_handler(event, context)

    runtime = LocalLambdaRuntime(queues.queue_url, wait_seconds=1, handler=handler, concurrency=2)
    stop = threading.Event()
    poller = threading.Thread(target=runtime.run, args=(stop,))
    poller.start()
    try:
        s3 = boto3.client("s3")
        s3.put_object(Bucket=BUCKET, Key="raw/incoming/slow.ndjson", Body=ndjson(record("s")))
        assert slow_started.wait(15)

        # when: a small file arrives while the slow batch runs
        s3.put_object(Bucket=BUCKET, Key="raw/incoming/small.ndjson", Body=ndjson(record("a")))

        # then: it lands meanwhile, and the slow one after it
        wait_until(lambda: len(lake_keys("audit/")) == 1, 15, 0.05, "the small file never landed")
        small_landed.set()
        wait_until(lambda: len(lake_keys("audit/")) == 2, 15, 0.05, "the slow file never landed")
    finally:
        small_landed.set()
        stop.set()
        poller.join(timeout=20)
    assert runtime.stats.failed == 0 and queue_depth(queues.queue_url) == 0


def test_a_batch_running_past_the_visibility_timeout_is_never_handed_to_another_poller(stack):
    # given: a 2 s visibility timeout and a batch that takes 6 s
    queues = provision_ingest(BUCKET, visibility_timeout=2)
    drop_test_event(queues.queue_url)
    calls: list[list[str]] = []

    def handler(event, context):
        calls.append(keys_of(event))
        time.sleep(6)
        return lambda_handler(event, context)

    runtime = LocalLambdaRuntime(queues.queue_url, wait_seconds=1, handler=handler, concurrency=3)
    stop = threading.Event()
    poller = threading.Thread(target=runtime.run, args=(stop,))
    poller.start()
    try:
        boto3.client("s3").put_object(
            Bucket=BUCKET, Key="raw/incoming/long.ndjson", Body=ndjson(record("a"))
        )
        wait_until(lambda: lake_keys("audit/"), 20, 0.1, "the long batch never landed")
    finally:
        stop.set()
        poller.join(timeout=20)

    # then: one delivery, kept invisible by the heartbeat, then deleted
    assert calls == [["raw/incoming/long.ndjson"]]
    assert runtime.stats.extended >= 2
    assert queue_depth(queues.queue_url) == in_flight(queues.queue_url) == 0


# A runtime whose handler announces the batch and then hangs, as a process to SIGKILL.
HANGING_RUNTIME = """
import sys, threading, time
from pathlib import Path
from supermarket_cli.lambda_runtime import LocalLambdaRuntime
def handler(event, context):
    Path(sys.argv[2]).write_text("in flight")
    time.sleep(600)
LocalLambdaRuntime(sys.argv[1], wait_seconds=1, handler=handler).run(threading.Event())
"""


def test_a_batch_whose_runtime_was_sigkilled_is_retried_within_the_visibility_timeout(
    stack, tmp_path
):
    # given: a 3 s visibility timeout and a runtime process that hangs inside a batch
    visibility = 3
    queues = provision_ingest(BUCKET, visibility_timeout=visibility)
    drop_test_event(queues.queue_url)
    marker = tmp_path / "in-flight"
    hanging = subprocess.Popen(
        [sys.executable, "-c", HANGING_RUNTIME, queues.queue_url, str(marker)],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        key = "raw/incoming/killed.ndjson"
        boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=ndjson(record("a")))
        wait_until(marker.exists, 20, 0.05, "the batch never reached the handler")
        time.sleep(2 * visibility)  # its heartbeat keeps it invisible meanwhile
        assert (queue_depth(queues.queue_url), in_flight(queues.queue_url)) == (0, 1)

        # when: the runtime is SIGKILLed, and another one polls
        hanging.send_signal(signal.SIGKILL)
        killed_at = time.time()
    finally:
        hanging.kill()
        hanging.wait(timeout=10)
    runtime = LocalLambdaRuntime(queues.queue_url, wait_seconds=1)
    stop = threading.Event()
    poller = threading.Thread(target=runtime.run, args=(stop,))
    poller.start()
    try:
        wait_until(lambda: lake_keys("audit/"), 30, 0.05, "the killed batch was never retried")
    finally:
        stop.set()
        poller.join(timeout=20)

    # then: retried once the timeout ran out after the last beat, not after 30 s
    (audit_key,) = lake_keys("audit/")
    audit = json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=audit_key)["Body"].read())
    retried_after = datetime.fromisoformat(audit["started_at"]).timestamp() - killed_at
    assert retried_after < visibility + 2  # + the long poll and the machine's slack


def test_the_runtime_refuses_a_concurrency_below_one(stack):
    queues = provision_ingest(BUCKET)
    with pytest.raises(ValueError, match="concurrency"):
        LocalLambdaRuntime(queues.queue_url, concurrency=0)
