"""Freshness of the live tables: the SNS alert when the policy (policies.py) fails.

Dagster's freshness daemon (on by default in 1.13, every 30 s) compares each policy with the
asset's latest materialization of any day partition, which lake_audit_sensor reports as the
Lambda's writes land, and records PASS, WARN or FAIL; the UI shows FAIL red. The sensor here
follows that verdict, so the page and the alert never disagree, and publishes one message per
incident: when a table turns FAIL, and again when it is fresh once more.
"""

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import dagster as dg

from supermarket_dagster.policies import LIVE_FAIL_WINDOW, LIVE_TABLES
from supermarket_dagster.resources import AlertsResource

STALE = "FAIL"
VERDICTS_THAT_CLOSE = ("PASS", "WARN")  # UNKNOWN says nothing, so it leaves an incident as is
MAX_PENDING_ALERTS = 20  # a topic gone for good must not grow the cursor without bound


@dataclass(frozen=True)
class LiveTable:
    """What Dagster knows of one live table: its freshness verdict and latest materialization."""

    table: str
    verdict: str  # a dg FreshnessState value; UNKNOWN before the daemon's first evaluation
    last_materialized_at: datetime | None = None
    last_source_key: str | None = None
    last_landed_at: str | None = None  # the audit record's finish time, as reported


@dataclass(frozen=True)
class AlertState:
    """The sensor's cursor: tables in an open incident (table -> opened at) and the messages
    decided but not yet published, so an SNS failure delays an alert and never loses it."""

    stale: Mapping[str, str] = field(default_factory=dict)
    pending: Sequence[Mapping[str, str]] = ()

    @classmethod
    def from_cursor(cls, cursor: str | None) -> "AlertState":
        if not cursor:
            return cls()
        state = json.loads(cursor)
        return cls(stale=state["stale"], pending=tuple(state["pending"]))

    def to_cursor(self) -> str:
        return json.dumps({"stale": dict(self.stale), "pending": list(self.pending)})


def seconds_stale(table: LiveTable, now: datetime) -> float | None:
    """Seconds since Dagster last heard of new rows: the age the policy measures."""
    if table.last_materialized_at is None:
        return None
    return round((now - table.last_materialized_at).total_seconds(), 1)


def seconds_since_landed(table: LiveTable, now: datetime) -> float | None:
    """Seconds since the last rows landed in the lake (the audit record's finish time); Dagster
    hears of them one audit-sensor tick later, so this is a little more than seconds_stale."""
    if table.last_landed_at is None:
        return seconds_stale(table, now)
    return round((now - datetime.fromisoformat(table.last_landed_at)).total_seconds(), 1)


def within_store_hours(hours: str, timezone: str, now: datetime) -> bool:
    """Whether `now` falls in HH:MM-HH:MM local store time; a range may run past midnight."""
    try:
        opens, closes = (_minutes(part) for part in hours.split("-"))
    except ValueError:
        raise ValueError(f"store_hours must look like 08:00-22:00, got {hours!r}") from None
    local = now.astimezone(ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    if opens <= closes:
        return opens <= minute < closes
    return minute >= opens or minute < closes


def _minutes(clock: str) -> int:
    if clock.strip() == "24:00":
        return 24 * 60
    parsed = time.fromisoformat(clock.strip())
    return parsed.hour * 60 + parsed.minute


def _stale_alert(tables: list[LiveTable], now: datetime) -> dict[str, str]:
    threshold = LIVE_FAIL_WINDOW.total_seconds()
    details = [
        {
            "asset_key": t.table,
            "freshness_state": t.verdict,
            "seconds_since_last_data": seconds_since_landed(t, now),
            "seconds_since_last_materialization": seconds_stale(t, now),
            "threshold_seconds": threshold,
            "last_materialized_at": t.last_materialized_at.isoformat()
            if t.last_materialized_at
            else None,
            "last_source_key": t.last_source_key,
            "last_landed_at": t.last_landed_at,
        }
        for t in tables
    ]
    worst = max((d["seconds_since_last_data"] or 0 for d in details), default=0)
    names = ", ".join(t.table for t in tables)
    subject = f"supermarket-lake: {names} stale {worst:.0f} s (limit {threshold:.0f} s)"
    return _alert("live_table_stale", subject, details, now)


def _recovery_alert(
    tables: list[LiveTable], stale_since: Mapping[str, str], now: datetime
) -> dict[str, str]:
    details = [
        {
            "asset_key": t.table,
            "freshness_state": t.verdict,
            "stale_since": stale_since[t.table],
            "last_source_key": t.last_source_key,
        }
        for t in tables
    ]
    names = ", ".join(t.table for t in tables)
    return _alert("live_table_recovered", f"supermarket-lake: {names} fresh again", details, now)


def _alert(kind: str, subject: str, details: list[dict], now: datetime) -> dict[str, str]:
    """The SNS message: a subject for the pager, the tables' details as JSON for the runbook."""
    body = {"alert": kind, "detected_at": now.isoformat(), "tables": details}
    return {"subject": subject, "message": json.dumps(body, indent=1)}


def next_alert_state(
    state: AlertState, tables: Sequence[LiveTable], now: datetime, in_store_hours: bool
) -> AlertState:
    """Opens an incident for each table newly FAIL (only in store hours), closes those fresh
    again, and queues one message for all tables that opened, one for all that closed."""
    opened = [t for t in tables if t.verdict == STALE and t.table not in state.stale]
    if not in_store_hours:
        opened = []  # a table still stale at opening time alerts then
    closed = [t for t in tables if t.verdict in VERDICTS_THAT_CLOSE and t.table in state.stale]
    stale = {k: v for k, v in state.stale.items() if k not in {t.table for t in closed}}
    stale |= {t.table: now.isoformat() for t in opened}
    pending = list(state.pending)
    if opened:
        pending.append(_stale_alert(opened, now))
    if closed:
        pending.append(_recovery_alert(closed, state.stale, now))
    return AlertState(stale=stale, pending=tuple(pending[-MAX_PENDING_ALERTS:]))


def publish_pending(state: AlertState, alerts: AlertsResource, log: logging.Logger) -> AlertState:
    """Publishes queued messages in order; on the first failure keeps it and the rest queued."""
    pending = list(state.pending)
    while pending:
        try:
            message_id = alerts.publish(pending[0]["subject"], pending[0]["message"])
        except Exception as exc:  # any SNS or network fault: retried on the next tick
            log.warning(f"alert not published, retrying next tick: {exc!r}")
            break
        log.info(f"published alert {message_id}: {pending[0]['subject']}")
        pending.pop(0)
    return replace(state, pending=tuple(pending))


def read_live_tables(instance: dg.DagsterInstance) -> list[LiveTable]:
    """The daemon's latest verdict and the latest materialization of each live table."""
    keys = [dg.AssetKey(table) for table in LIVE_TABLES]
    verdicts = instance.get_freshness_state_records(keys)
    tables = []
    for key in keys:
        record = verdicts.get(key)
        entry = instance.get_latest_materialization_event(key)
        materialization = entry.asset_materialization if entry else None
        metadata = materialization.metadata if materialization else {}
        tables.append(
            LiveTable(
                table=key.to_user_string(),
                verdict=record.freshness_state.value if record else "UNKNOWN",
                last_materialized_at=datetime.fromtimestamp(entry.timestamp, UTC)
                if entry
                else None,
                last_source_key=_text(metadata.get("last_source_key")),
                last_landed_at=_text(metadata.get("last_landed_at")),
            )
        )
    return tables


def _text(value: dg.MetadataValue | None) -> str | None:
    return None if value is None else str(value.value)


def utc_now() -> datetime:
    """The sensor's clock; tests replace it to reach minutes later without waiting."""
    return datetime.now(UTC)


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def live_feed_freshness_sensor(
    context: dg.SensorEvaluationContext, alerts: AlertsResource
) -> dg.SensorResult:
    """Publishes to SNS once when a live table fails its freshness policy, once when it recovers."""
    now = utc_now()
    tables = read_live_tables(context.instance)
    in_hours = within_store_hours(alerts.store_hours, alerts.store_timezone, now)
    state = next_alert_state(AlertState.from_cursor(context.cursor), tables, now, in_hours)
    state = publish_pending(state, alerts, context.log)
    summary = ", ".join(f"{t.table} {t.verdict} ({seconds_stale(t, now)} s)" for t in tables)
    if state.pending:
        summary += f"; {len(state.pending)} alert(s) waiting to be published"
    return dg.SensorResult(skip_reason=summary, cursor=state.to_cursor())
