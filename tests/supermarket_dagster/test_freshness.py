"""The live tables' freshness: Dagster's own daemon marks them FAIL when the feed stops, and the
alert sensor publishes one SNS message per incident. Time is frozen and moved by hand, so
"six minutes later" takes no time."""

import json
from datetime import UTC, datetime, timedelta

import boto3
import dagster as dg
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.freshness import FreshnessDaemon

from lambda_ingest.handler import lambda_handler
from supermarket_cli.local_aws import provision_alert_topic
from supermarket_dagster.defs.live import freshness
from supermarket_dagster.defs.live.freshness import (
    AlertState,
    LiveTable,
    live_feed_freshness_sensor,
    next_alert_state,
    within_store_hours,
)
from supermarket_dagster.defs.live.sensors import lake_audit_sensor
from supermarket_dagster.policies import LIVE_TABLES
from supermarket_dagster.resources import AlertsResource
from tests.factories import ndjson, record

MOTO_ACCOUNT = "123456789012"


class Inbox:
    """An SQS queue subscribed to the alert topic: what an on-call subscriber would receive."""

    def __init__(self, topic_arn: str) -> None:
        self.sqs = boto3.client("sqs")
        self.url = self.sqs.create_queue(QueueName="alert-inbox")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        boto3.client("sns").subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"]
        )

    def take(self) -> list[dict]:
        """Every message delivered since the last take, as (subject, parsed body) dicts."""
        taken = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
            if not batch.get("Messages"):
                return taken
            for message in batch["Messages"]:
                envelope = json.loads(message["Body"])
                taken.append({"subject": envelope["Subject"], **json.loads(envelope["Message"])})
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


class Deployment:
    """The real Definitions on a Dagster instance, with the freshness daemon and both live
    sensors driven one tick at a time at a chosen moment."""

    def __init__(self, workspace: WorkspaceProcessContext, lake, alerts, monkeypatch) -> None:
        self.workspace, self.instance = workspace, workspace.instance
        self.lake, self.alerts, self.monkeypatch = lake, alerts, monkeypatch
        self.audit_cursor = self.alert_cursor = None

    def land(self, name: str, *records: dict) -> str:
        """A live log ingested by the real handler, which writes its audit record."""
        key = f"raw/incoming/dt={datetime.now(UTC).date()}/{name}.ndjson"
        boto3.client("s3").put_object(Bucket=self.lake.bucket, Key=key, Body=ndjson(*records))
        notification = {
            "eventSource": "aws:s3",
            "eventTime": datetime.now(UTC).isoformat(),
            "s3": {"bucket": {"name": self.lake.bucket}, "object": {"key": key}},
        }
        lambda_handler({"Records": [notification]}, None)
        return key

    def report_audit(self, at: datetime) -> None:
        """lake_audit_sensor ticks at `at`; the sensor daemon stores its events as it would."""
        with dg.build_sensor_context(cursor=self.audit_cursor, resources={"lake": self.lake}) as c:
            result = lake_audit_sensor(c)
        self.audit_cursor = result.cursor
        with freeze_time(at):
            for event in result.asset_events:
                self.instance.report_runless_asset_event(event)

    def evaluate_freshness(self, at: datetime) -> dict[str, str]:
        """One iteration of Dagster's freshness daemon at `at`; the verdict per live table."""
        with freeze_time(at):
            list(FreshnessDaemon().run_iteration(self.workspace))
        keys = [dg.AssetKey(t) for t in LIVE_TABLES]
        records = self.instance.get_freshness_state_records(keys)
        return {k.to_user_string(): records[k].freshness_state.value for k in keys}

    def tick_alerts(self, at: datetime, alerts: AlertsResource | None = None) -> dg.SensorResult:
        self.monkeypatch.setattr(freshness, "utc_now", lambda: at)
        resources = {"alerts": alerts or self.alerts}
        with dg.build_sensor_context(
            cursor=self.alert_cursor, resources=resources, instance=self.instance
        ) as context:
            result = live_feed_freshness_sensor(context)
        self.alert_cursor = result.cursor
        return result

    def watch(self, at: datetime) -> dg.SensorResult:
        """The daemon evaluates, then the alert sensor ticks, both at `at`."""
        self.evaluate_freshness(at)
        return self.tick_alerts(at)


@pytest.fixture
def topic(lake):
    return provision_alert_topic()


@pytest.fixture
def deployment(lake, topic, monkeypatch, tmp_path):
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="supermarket_dagster.definitions", attribute="defs"),
        location_name="supermarket",
    )
    with (
        dg.DagsterInstance.local_temp(str(tmp_path)) as instance,
        WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as workspace,
    ):
        yield Deployment(workspace, lake, AlertsResource(topic_arn=topic), monkeypatch)


def _now(transaction_id: str) -> dict:
    return record(transaction_id, transaction_datetime=datetime.now(UTC).isoformat())


def test_the_freshness_policy_is_on_both_live_tables():
    from supermarket_dagster.definitions import defs

    graph = defs.resolve_asset_graph()
    for table in LIVE_TABLES:
        policy = graph.get(dg.AssetKey(table)).freshness_policy
        assert isinstance(policy, dg.FreshnessPolicy)
        assert policy.fail_window.to_timedelta() == timedelta(minutes=5)
        assert policy.warn_window.to_timedelta() == timedelta(minutes=2)
    assert graph.get(dg.AssetKey("skus")).freshness_policy is None  # reference data: no feed
    sensor = defs.resolve_sensor_def("live_feed_freshness_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_dagster_fails_a_live_table_after_its_window_with_no_new_data(deployment):
    t0 = datetime.now(UTC)
    assert deployment.evaluate_freshness(t0) == {t: "UNKNOWN" for t in LIVE_TABLES}
    deployment.land("a", _now("a1"))
    deployment.report_audit(t0)

    states = [deployment.evaluate_freshness(t0 + timedelta(minutes=m)) for m in (1, 3, 5)]

    assert [s["transactions"] for s in states] == ["PASS", "WARN", "FAIL"]
    assert states[-1]["transaction_items"] == "FAIL"
    # The policy is asset-wide: a materialization of any day partition makes the table fresh.
    with freeze_time(t0 + timedelta(minutes=6)):
        deployment.instance.report_runless_asset_event(
            dg.AssetMaterialization("transactions", partition="2025-01-01")
        )
    assert deployment.evaluate_freshness(t0 + timedelta(minutes=6))["transactions"] == "PASS"


def test_a_stalled_feed_alerts_once_per_incident(deployment, topic):
    inbox = Inbox(topic)
    assert deployment.watch(datetime.now(UTC)).cursor and inbox.take() == []  # no data: no verdict

    deployment.land("a", _now("a1"), _now("a2"))
    last = deployment.land("b", _now("b1"))
    t0 = datetime.now(UTC)
    minute = lambda m: t0 + timedelta(minutes=m)  # noqa: E731
    deployment.report_audit(minute(0))
    deployment.watch(minute(1))
    assert inbox.take() == []  # fresh

    deployment.watch(minute(6))  # the feed stopped at minute 0
    (alert,) = inbox.take()
    assert alert["alert"] == "live_table_stale"
    assert "transactions" in alert["subject"] and "transaction_items" in alert["subject"]
    tables = {t["asset_key"]: t for t in alert["tables"]}
    assert set(tables) == set(LIVE_TABLES)
    assert tables["transactions"]["freshness_state"] == "FAIL"
    assert tables["transactions"]["seconds_since_last_materialization"] == 360  # the policy's age
    assert 360 <= tables["transactions"]["seconds_since_last_data"] < 400  # landed just before
    assert tables["transactions"]["threshold_seconds"] == 300
    assert tables["transactions"]["last_source_key"] == last

    for m in (7, 8, 12):
        deployment.watch(minute(m))
    assert inbox.take() == []  # still the same incident: no second alert

    resumed = deployment.land("c", _now("c1"))
    deployment.report_audit(minute(13))
    deployment.watch(minute(13.5))
    (recovery,) = inbox.take()
    assert recovery["alert"] == "live_table_recovered"
    assert {t["asset_key"] for t in recovery["tables"]} == set(LIVE_TABLES)

    deployment.watch(minute(19))  # the feed stopped again: a new incident
    deployment.watch(minute(20))
    (second,) = inbox.take()
    assert second["alert"] == "live_table_stale"
    tables = {t["asset_key"]: t for t in second["tables"]}
    assert tables["transaction_items"]["seconds_since_last_materialization"] == 360
    assert tables["transaction_items"]["last_source_key"] == resumed


def test_an_alert_that_cannot_be_published_is_kept_and_sent_on_a_later_tick(deployment):
    missing = f"arn:aws:sns:us-east-1:{MOTO_ACCOUNT}:supermarket-pager"
    pager = AlertsResource(topic_arn=missing)
    t0 = datetime.now(UTC)
    deployment.land("a", _now("a1"))
    deployment.report_audit(t0)
    deployment.evaluate_freshness(t0 + timedelta(minutes=6))

    failed = deployment.tick_alerts(t0 + timedelta(minutes=6), pager)  # no such topic yet

    state = AlertState.from_cursor(failed.cursor)
    assert set(state.stale) == set(LIVE_TABLES) and len(state.pending) == 1
    assert provision_alert_topic("supermarket-pager") == missing
    inbox = Inbox(missing)
    deployment.tick_alerts(t0 + timedelta(minutes=7), pager)
    deployment.tick_alerts(t0 + timedelta(minutes=8), pager)
    (alert,) = inbox.take()
    assert alert["alert"] == "live_table_stale"
    assert alert["tables"][0]["seconds_since_last_materialization"] == 360  # decided, not sent
    assert AlertState.from_cursor(deployment.alert_cursor).pending == ()


def _failing(table: str, at: datetime) -> LiveTable:
    return LiveTable(table, "FAIL", last_materialized_at=at - timedelta(minutes=10))


def test_outside_store_hours_a_stale_table_alerts_only_once_the_stores_open():
    night = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    opening = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    hours = "08:00-22:00"

    at_night = next_alert_state(
        AlertState(), [_failing("transactions", night)], night,
        within_store_hours(hours, "UTC", night),
    )  # fmt: skip
    at_opening = next_alert_state(
        at_night, [_failing("transactions", opening)], opening,
        within_store_hours(hours, "UTC", opening),
    )  # fmt: skip

    assert at_night == AlertState()
    (alert,) = at_opening.pending
    assert json.loads(alert["message"])["tables"][0]["seconds_since_last_data"] == 600


@pytest.mark.parametrize(
    ("hours", "clock", "open_"),
    [
        ("00:00-24:00", "00:00", True),
        ("00:00-24:00", "23:59", True),
        ("08:00-22:00", "07:59", False),
        ("08:00-22:00", "08:00", True),
        ("08:00-22:00", "22:00", False),
        ("22:00-06:00", "23:30", True),  # a night shift runs past midnight
        ("22:00-06:00", "05:59", True),
        ("22:00-06:00", "12:00", False),
    ],
)
def test_store_hours(hours, clock, open_):
    moment = datetime.fromisoformat(f"2026-03-02T{clock}:00+00:00")
    assert within_store_hours(hours, "UTC", moment) is open_


@pytest.mark.parametrize("hours", ["8-22", "08:00", "08:00-22:00-23:00", "25:00-26:00"])
def test_store_hours_that_do_not_parse_say_what_is_expected(hours):
    with pytest.raises(ValueError, match="must look like 08:00-22:00"):
        within_store_hours(hours, "UTC", datetime(2026, 3, 2, tzinfo=UTC))


def test_store_hours_are_read_in_the_stores_time_zone():
    summer_evening_utc = datetime(2026, 7, 1, 20, 30, tzinfo=UTC)  # 22:30 in Paris
    assert within_store_hours("08:00-22:00", "UTC", summer_evening_utc)
    assert not within_store_hours("08:00-22:00", "Europe/Paris", summer_evening_utc)


def test_the_alert_topic_is_provisioned_once_however_often_it_is_asked_for(lake):
    first, again = provision_alert_topic(), provision_alert_topic()
    topics = boto3.client("sns").list_topics()["Topics"]
    assert first == again == f"arn:aws:sns:us-east-1:{MOTO_ACCOUNT}:supermarket-alerts"
    assert [t["TopicArn"] for t in topics] == [first]
