"""Stalled-feed drill: how long after the live feed stops the UI turns red and SNS alerts.

    .venv/bin/python benchmarks/freshness_alert.py [--feed-seconds 60] [--after-alert 90]

moto server, the Dagster webserver and the daemon (from workspace.yaml) run as their own
processes on free loopback ports, started as `supermarket up` starts them, on a fresh
DAGSTER_HOME with the project's dagster.yaml. For
--feed-seconds a small log lands every 2 s and the Lambda's handler ingests it; then the feed
stops. Every 5 s the drill asks the webserver's GraphQL for each live table's freshness status
(what the asset page shows) and reads the SQS queue subscribed to the alert topic. It prints
the seconds from the last landed file to WARNING, to DEGRADED (red) and to the alert, then
waits --after-alert seconds more to count the alerts of this one incident. Finally one more
file lands, and it prints how long the UI and the recovery message take to follow.
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from supermarket_cli.dagster_instance import start_dagster, write_instance_config
from supermarket_cli.processes import Supervisor, TimedOut, free_port, wait_until
from supermarket_cli.stack import children

BUCKET = "drill-lake"
LIVE = ("transactions", "transaction_items")
QUERY = "{ assetNodes { assetKey { path } freshnessStatusInfo { freshnessStatus } } }"


def basket(transaction_id: str, at: datetime) -> str:
    """One log line of the shared format, sold at `at`."""
    items = [{"sku_id": "SKU00001", "quantity": 2, "unit_price": 3.49}]
    return json.dumps({"transaction_id": transaction_id, "store_id": "STORE0001",
                       "transaction_datetime": at.isoformat(), "payment_method": "cash",
                       "items": items}) + "\n"  # fmt: skip


def freshness_in_ui(port: int) -> dict[str, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            nodes = json.load(response)["data"]["assetNodes"]
    except Exception:  # the webserver is still loading the code location
        return {}
    return {
        "/".join(n["assetKey"]["path"]): (n["freshnessStatusInfo"] or {}).get("freshnessStatus")
        for n in nodes
        if "/".join(n["assetKey"]["path"]) in LIVE
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feed-seconds", type=float, default=60)
    parser.add_argument("--after-alert", type=float, default=90)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="drill-"))
    print(f"logs and the Dagster home in {work}", file=sys.stderr)
    # moto and Dagster as `supermarket up` runs them, their logs in the work folder.
    with Supervisor(work) as supervisor:
        moto_port = free_port()
        supervisor.start(children.moto("127.0.0.1", moto_port, os.environ))
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "LAKE_BUCKET": BUCKET,
            "LAKE_COMMIT_LOCK": str(work / "commit.lock"),  # committers take turns, as in `up`
        }
        os.environ.update(env)
        import boto3

        from lambda_ingest.handler import lambda_handler
        from supermarket_cli.local_aws import provision_alert_topic, provision_ingest
        from supermarket_queries.glue import create_catalog

        provision_ingest(BUCKET)
        create_catalog(boto3.client("glue"), BUCKET)  # the Iceberg tables, as `up` creates them
        topic = provision_alert_topic()
        sqs = boto3.client("sqs")
        inbox = sqs.create_queue(QueueName="drill-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])
        boto3.client("sns").subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn["Attributes"]["QueueArn"]
        )
        started = time.monotonic()
        home = work / "dagster_home"
        write_instance_config(home)
        ui_port = free_port()
        start_dagster(supervisor, home, "127.0.0.1", ui_port, {**env, "ALERT_TOPIC_ARN": topic})
        print(f"Dagster webserver and daemon loaded after {time.monotonic() - started:.1f} s")

        def land(number: int) -> None:
            """One small live log, ingested by the Lambda's own handler."""
            now = datetime.now(UTC)
            key = f"raw/incoming/dt={now.date()}/drill-{number:04d}.ndjson"
            body = "".join(basket(f"D{number}-{i}", now) for i in range(5)).encode()
            boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
            notification = {
                "eventSource": "aws:s3",
                "eventTime": now.isoformat(),
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}},
            }
            lambda_handler({"Records": [notification]}, None)

        def take() -> list[dict]:
            batch = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)
            for message in batch.get("Messages", []):
                sqs.delete_message(QueueUrl=inbox, ReceiptHandle=message["ReceiptHandle"])
            return [json.loads(m["Body"]) for m in batch.get("Messages", [])]

        feed_end = time.monotonic() + args.feed_seconds
        files = 0
        while time.monotonic() < feed_end:
            land(files)
            files += 1
            time.sleep(2)
        stopped = time.monotonic()
        print(f"feed: {files} files in {args.feed_seconds:.0f} s, then stopped")

        seen: dict[str, float] = {}
        alerts: list[dict] = []
        alert_at = None

        def watched_after_alert() -> bool:
            nonlocal alert_at
            for status in set(freshness_in_ui(ui_port).values()):
                seen.setdefault(status, time.monotonic() - stopped)
            alerts.extend(take())
            if alerts and alert_at is None:
                alert_at = time.monotonic() - stopped
            return bool(alert_at and time.monotonic() - stopped > alert_at + args.after_alert)

        with contextlib.suppress(TimedOut):  # what was seen by then is printed below
            wait_until(watched_after_alert, args.timeout, interval=5)
        for status, seconds in sorted(seen.items(), key=lambda item: item[1]):
            print(f"UI freshness {status}: {seconds:.0f} s after the last file")
        if alert_at is None:
            raise SystemExit("no alert received")
        print(f"SNS alert received: {alert_at:.0f} s after the last file")
        print(f"alerts in this incident: {len(alerts)} (watched {args.after_alert:.0f} s more)")
        print(f"subject: {alerts[0]['Subject']}")
        print(alerts[0]["Message"])

        resumed = time.monotonic()
        land(files)
        healthy_at = recovered_at = None

        def recovered() -> bool:
            nonlocal healthy_at, recovered_at
            if healthy_at is None and set(freshness_in_ui(ui_port).values()) == {"HEALTHY"}:
                healthy_at = time.monotonic() - resumed
            if recovered_at is None and any("fresh again" in m["Subject"] for m in take()):
                recovered_at = time.monotonic() - resumed
            return healthy_at is not None and recovered_at is not None

        try:
            wait_until(recovered, 180, interval=2)
        except TimedOut:
            raise SystemExit("no recovery within 180 s of the feed resuming") from None
        print(f"feed resumed: UI HEALTHY after {healthy_at:.0f} s, recovery message after "
              f"{recovered_at:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
