"""Digests of the audit log's settled past: which windows a read is planned over, and on a moto
server that the records read through digests are the log's own, each read from the log once."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from lake_contract import layout
from supermarket_dagster import audit_digest, lake_day
from tests.factories import audit

MINUTE, HOUR = audit_digest.WINDOWS_MS


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(f"2026-03-02T{text}+00:00").timestamp() * 1000)


def test_a_whole_settled_hour_is_one_window_and_the_unsettled_rest_is_left_to_the_listing():
    windows, listed_from = audit_digest.plan(_ms("10:59:30"), _ms("13:00:00"), _ms("12:30:00"))

    assert windows == [(MINUTE, _ms("10:59:00")), (HOUR, _ms("11:00:00"))] + [
        (MINUTE, _ms("12:00:00") + n * MINUTE) for n in range(30)
    ]
    assert listed_from == _ms("12:30:00")


def test_a_few_seconds_of_the_log_long_settled_are_one_minute_not_its_hour():
    windows, listed_from = audit_digest.plan(_ms("10:00:30"), _ms("10:00:50"), _ms("23:00:00"))

    assert windows == [(MINUTE, _ms("10:00:00"))]
    assert listed_from == _ms("10:01:00")


def _write_log(objects, finished: list[datetime]) -> dict[str, object]:
    records = {}
    for n, at in enumerate(finished):
        record = audit(f"raw/incoming/dt={at.date()}/till-{n}.ndjson", n + 1,
                       started_at=at, finished_at=at)  # fmt: skip
        objects.write(record.key, record.to_json())
        records[record.source_key] = record
    return records


@pytest.fixture
def now(monkeypatch) -> datetime:
    """The time the reads take as now, held still: a minute that settles between two reads would
    be digested by the second, and the test would depend on where in a minute it ran."""
    held = datetime.now(UTC)

    class Held(datetime):
        @classmethod
        def now(cls, tz=None) -> datetime:
            return held.astimezone(tz)

    monkeypatch.setattr(lake_day, "datetime", Held)
    return held


def _counting_reads(objects) -> list[str]:
    read, real_read = [], objects.read

    def counted(key, *args, **kwargs):
        read.append(key)
        return real_read(key, *args, **kwargs)

    objects.read = counted
    return read


def test_the_settled_log_is_read_from_the_log_once_then_from_its_digests(lake, now):
    objects = lake.objects()
    # Three hours of the log, a record every 7 minutes, and two records not settled yet.
    finished = [now - timedelta(hours=3) + n * timedelta(minutes=7) for n in range(26)]
    finished += [now - timedelta(seconds=2), now - timedelta(seconds=1)]  # not digested yet
    records = _write_log(objects, finished)
    first, last = min(finished), max(finished)
    read = _counting_reads(objects)

    assert lake_day.latest_audits(objects, first.date(), set(records), first, last) == records
    digests = objects.keys(layout.AUDIT_DIGESTS)
    hours = [
        int(k.rsplit("/", 1)[1][:13]) for k in digests if k.endswith(f"-{HOUR // 1000}s.ndjson.gz")
    ]
    minutes = [
        int(k.rsplit("/", 1)[1][:13])
        for k in digests
        if k.endswith(f"-{MINUTE // 1000}s.ndjson.gz")
    ]
    # A settled hour is read whole from its digest: its minutes get none of their own. (An hour
    # that ended less than SETTLED ago keeps its minutes' digests, to take a late record.)
    trusted_ms = int((now - audit_digest.SETTLED).timestamp() * 1000)
    settled_hours = [h for h in hours if h + HOUR <= trusted_ms]
    assert settled_hours and minutes
    assert not [m for m in minutes for h in settled_hours if h <= m < h + HOUR]
    assert len([key for key in read if key.startswith(layout.AUDIT)]) == len(records)

    read.clear()
    assert lake_day.latest_audits(objects, first.date(), set(records), first, last) == records
    # Again: only the two records of the current minute come from the log itself.
    assert len([key for key in read if key.startswith(layout.AUDIT)]) == 2
    assert len(read) == 2 + len([key for key in read if key.startswith(layout.AUDIT_DIGESTS)])
    assert objects.keys(layout.AUDIT_DIGESTS) == digests


def test_a_damaged_digest_is_written_again_and_a_reprocessed_source_counts_its_newest_record(lake):
    objects = lake.objects()
    at = (datetime.now(UTC) - timedelta(hours=1)).replace(second=5, microsecond=0)
    records = _write_log(objects, [at, at + timedelta(seconds=20)])
    assert lake_day.latest_audits(objects, at.date(), set(records), at, at) == records
    minute = int(at.timestamp() * 1000) // MINUTE * MINUTE
    digest = layout.audit_digest_key(MINUTE, minute)
    assert len(audit_digest.decode(objects.read(digest))) == 2
    objects.write(digest, b"not gzip")
    source = min(records)
    again = audit(source, 99, started_at=at + timedelta(seconds=40),
                  finished_at=at + timedelta(seconds=40))  # fmt: skip
    objects.write(again.key, again.to_json())  # lands in the same minute: written again below

    found = lake_day.latest_audits(objects, at.date(), set(records), at, at + timedelta(seconds=40))

    assert found == records | {source: again}
    assert len(audit_digest.decode(objects.read(digest))) == 3  # whole again


def test_a_record_landing_late_in_a_window_not_yet_trusted_is_added_to_its_digest(lake, now):
    objects = lake.objects()
    # A minute that ended 15-75 s ago: digested, but listed again until SETTLED has passed.
    at = (now - timedelta(seconds=75)).replace(second=1, microsecond=0)
    records = _write_log(objects, [at])
    assert lake_day.latest_audits(objects, at.date(), set(records), at, at) == records
    digest = layout.audit_digest_key(MINUTE, int(at.timestamp() * 1000) // MINUTE * MINUTE)
    assert len(audit_digest.decode(objects.read(digest))) == 1

    late = audit("raw/incoming/late.ndjson", 5, started_at=at + timedelta(seconds=30),
                 finished_at=at + timedelta(seconds=30))  # fmt: skip
    objects.write(late.key, late.to_json())

    found = lake_day.latest_audits(objects, at.date(), set(records) | {late.source_key}, at, at)
    assert found == records | {late.source_key: late}
    assert len(audit_digest.decode(objects.read(digest))) == 2


def test_a_digest_that_cannot_be_written_leaves_the_read_whole(lake, caplog):
    objects = lake.objects()
    at = datetime.now(UTC) - timedelta(hours=1)
    records = _write_log(objects, [at, at + timedelta(seconds=20)])

    def refused(key, *args, **kwargs):
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "PutObject")

    objects.write = refused

    assert lake_day.latest_audits(objects, at.date(), set(records), at, at) == records
    assert objects.keys(layout.AUDIT_DIGESTS) == []
    assert "not written" in caplog.text


def test_a_record_written_over_several_lines_is_kept_as_one_digest_line():
    body = b'{"source_key": "raw/a.ndjson",\n "records_read": 3}'

    (entry,) = audit_digest.decode(audit_digest.encode([("audit/dt=2026-03-02/1-a.json", body)]))

    assert entry[0] == "audit/dt=2026-03-02/1-a.json"
    assert json.loads(entry[1]) == json.loads(body)
