"""The local Lambda runtime against a moto server: S3 -> SQS -> runtime -> handler -> lake."""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest

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
