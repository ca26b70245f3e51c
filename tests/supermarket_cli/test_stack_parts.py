"""The stack's parts without the stack: settings from the environment, the supervisor's restart
and stop of whole process groups, the kept lake's mirror, and the status line's counts."""

import json
import os
import signal
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import psutil
import pytest
from moto import mock_aws

from lake_contract import tables
from lambda_ingest.events import SourceObject
from lambda_ingest.handler import ingest
from supermarket_cli.processes import (
    ChildFailed,
    ChildSpec,
    Supervisor,
    TimedOut,
    accepts_connections,
    choose_port,
    free_port,
    group_alive,
    wait_until,
)
from supermarket_cli.stack import snapshot
from supermarket_cli.stack.config import from_environment, history_days
from supermarket_cli.stack.status import LakeWatch, StatusPrinter
from tests.factories import ndjson, record
from tests.moto_server import iceberg_lake, table_rows, use_test_aws

BUCKET = "parts-lake"


def test_settings_come_from_the_environment_with_defaults():
    config = from_environment(
        {
            "FEED_TPS": "120",
            "HISTORY_TRANSACTIONS_PER_DAY": "10_000",
            "LAKE_BUCKET": "my_lake",
            "SUPERMARKET_DAGSTER_PORT": "3456",
            "SUPERMARKET_MOTO_PORT": "0",
        }
    )
    assert (config.tps, config.history_per_day, config.bucket) == (120.0, 10_000, "my_lake")
    assert (config.dagster_port, config.moto_port, config.fps) == (3456, 0, 2.0)
    assert config.ports_pinned == {"dagster_port"}  # 0 means any port: nothing to pin
    assert config.embedded_aws  # no AWS_ENDPOINT_URL: the stack starts moto
    assert not from_environment({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}).embedded_aws
    with pytest.raises(ValueError, match="FEED_FPS='fast'"):
        from_environment({"FEED_FPS": "fast"})


def test_history_is_the_days_before_today():
    config = from_environment({"HISTORY_DAYS": "3"})
    from datetime import date

    assert history_days(config, date(2026, 3, 1)) == ["2026-02-26", "2026-02-27", "2026-02-28"]


def test_a_busy_default_port_falls_back_but_a_pinned_one_fails():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert choose_port("127.0.0.1", port, pinned=False) != port
        with pytest.raises(ChildFailed, match=f"port {port}"):
            choose_port("127.0.0.1", port, pinned=True)
    free = free_port("127.0.0.1")
    assert choose_port("127.0.0.1", free, pinned=True) == free


def test_a_server_accepts_connections_only_while_it_listens():
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        assert not accepts_connections("127.0.0.1", port)  # bound, not listening yet
        server.listen()
        assert accepts_connections("127.0.0.1", port)
    assert not accepts_connections("127.0.0.1", port)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_child_that_dies_is_reported_and_restarted(tmp_path):
    reports: list[str] = []
    supervisor = Supervisor(tmp_path, reports.append)
    marker = tmp_path / "runs"
    # Dies on its first run, stays up on the second: a restart must bring it back.
    code = (
        f"import pathlib, time, sys; p = pathlib.Path({str(marker)!r}); "
        "n = len(p.read_text()) if p.exists() else 0; p.write_text('x' * (n + 1)); "
        "sys.exit(3) if n == 0 else time.sleep(60)"
    )
    reprovisioned: list[int] = []
    spec = ChildSpec("flaky", python(code), {})
    spec.after_restart = lambda: reprovisioned.append(child.pid)
    child = supervisor.start(spec)
    first_pid = child.pid

    def restarted() -> bool:
        supervisor.check()
        return any("restarted" in r for r in reports)

    wait_until(restarted, timeout=10, describe=f"no restart reported: {reports}")
    assert any(
        f"flaky (pid {first_pid}) exited with code 3; restarting in 1s" in r for r in reports
    )
    assert child.is_running() and child.pid != first_pid
    assert reprovisioned == [child.pid]  # what the restart lost is re-created once
    assert "--- " in (tmp_path / "flaky.log").read_text()  # its output went to its own log
    supervisor.stop_all()
    assert not group_alive(child.pid)


def test_stop_reaches_what_a_child_started(tmp_path):
    supervisor = Supervisor(tmp_path, lambda _: None)
    # The grandchild ignores SIGTERM and would outlive its parent without the group kill.
    grandchild = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    )
    code = (
        f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {grandchild!r}]); "
        "time.sleep(60)"
    )
    child = supervisor.start(ChildSpec("parent", python(code), {}, stop_timeout=5))
    time.sleep(0.5)
    assert group_alive(child.pid)
    supervisor.stop("parent")
    assert not group_alive(child.pid)


def test_a_script_ended_by_sigterm_stops_its_supervisors_children(tmp_path):
    """A benchmark killed with SIGTERM (its default action ends a process without leaving its
    `with` blocks) used to leave its moto server running."""
    import subprocess

    script = (
        "import sys, time\n"
        "from supermarket_cli.processes import ChildSpec, Supervisor\n"
        "with Supervisor(None) as supervisor:\n"
        "    child = supervisor.start(ChildSpec('sleeper', "
        "[sys.executable, '-c', 'import time; time.sleep(60)'], {}))\n"
        "    print(child.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    script_process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    child_pid = int(script_process.stdout.readline())
    assert group_alive(child_pid)
    script_process.send_signal(signal.SIGTERM)
    assert script_process.wait(timeout=30) == 128 + signal.SIGTERM
    assert not group_alive(child_pid)


def test_a_background_child_and_what_it_starts_later_run_at_a_lower_priority(tmp_path):
    from supermarket_cli.dagster_instance import BACKGROUND_NICE, code_server_spec, daemon_spec

    supervisor = Supervisor(tmp_path, lambda _: None)
    # Given a child that starts one of its own a moment later, as the code server starts runs
    code = (
        "import subprocess, sys, time; time.sleep(0.3); "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    )
    child = supervisor.start(ChildSpec("background", python(code), {}, nice=5))
    try:
        ours = os.nice(0)
        found = wait_until(lambda: psutil.Process(child.pid).children(), 10, 0.1, "no grandchild")
        # then both run 5 steps nicer than the supervisor
        assert psutil.Process(child.pid).nice() == ours + 5
        assert [p.nice() for p in found] == [ours + 5]
    finally:
        supervisor.stop_all()
    # and the stack's Dagster processes are background children
    env = dict(os.environ)
    assert code_server_spec("127.0.0.1", 1, env).nice == daemon_spec(env).nice == BACKGROUND_NICE


def test_the_leader_is_asked_first_and_stops_what_it_started(tmp_path):
    # Given a leader that, asked to stop, stops its own child (as Dagster shuts its code server
    # down over gRPC), and a child that records who stopped it
    marker = tmp_path / "child"
    child = (
        "import pathlib, signal, sys, time\n"
        f"p = pathlib.Path({str(marker)!r})\n"
        "def by(who): p.write_text(who); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, lambda *_: by('signalled by the stop'))\n"
        "signal.signal(signal.SIGUSR1, lambda *_: by('stopped by its leader'))\n"
        "p.write_text('running'); time.sleep(60)\n"
    )
    leader = (
        "import signal, subprocess, sys, time\n"
        f"c = subprocess.Popen([sys.executable, '-c', {child!r}])\n"
        "def stop(*_): c.send_signal(signal.SIGUSR1); c.wait(); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "time.sleep(60)\n"
    )
    supervisor = Supervisor(tmp_path)
    started = supervisor.start(ChildSpec("leader", python(leader), {}, stop_timeout=10))
    wait_until(lambda: marker.exists() and marker.read_text() == "running", 10, 0.05)

    # When it is stopped
    code = supervisor.stop("leader")

    # Then the child heard from its leader only, the leader exited cleanly, the group is gone
    assert marker.read_text() == "stopped by its leader"
    assert code == 0
    assert not group_alive(started.pid)


def test_wait_until_returns_the_value_or_says_what_it_last_saw():
    answers = iter([None, 0, "ready"])
    assert wait_until(lambda: next(answers), timeout=5, interval=0.01) == "ready"

    tries = []
    with pytest.raises(TimedOut) as timed_out:
        wait_until(lambda: tries.append(1), 0.05, 0.01, lambda: f"not yet after {len(tries)} tries")
    assert len(tries) >= 2
    assert str(timed_out.value) == f"not yet after {len(tries)} tries"  # the state at the end
    assert wait_until(lambda: "at once", timeout=0) == "at once"  # a zero timeout still asks once


def test_a_child_that_never_gets_ready_fails_the_start(tmp_path):
    supervisor = Supervisor(tmp_path, lambda _: None)
    with pytest.raises(ChildFailed, match="exited with code 2"):
        supervisor.start(
            ChildSpec("broken", python("raise SystemExit(2)"), {}, ready=lambda: False)
        )
    spec = ChildSpec(
        "slow",
        python("import time; time.sleep(60)"),
        {},
        ready=lambda: False,
        stop_signal=signal.SIGKILL,
    )
    with pytest.raises(ChildFailed, match="not ready after 1s"):
        supervisor.start(spec, ready_timeout=1)
    supervisor.stop_all()


@pytest.fixture
def s3(monkeypatch):
    use_test_aws(monkeypatch)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def lake_s3(monkeypatch):
    """The bucket and the Iceberg tables on a moto server, for what ingests."""
    with iceberg_lake(monkeypatch, BUCKET):
        yield boto3.client("s3")


def bucket_contents(client, bucket) -> dict[str, bytes]:
    listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing
    }


def test_the_kept_lake_mirrors_the_bucket_and_comes_back_whole(s3, tmp_path: Path):
    objects = {
        f"lake/transactions/dt=2026-03-0{n}/f{n}.parquet": bytes([n]) * (100 + n)
        for n in range(1, 5)
    }
    objects["audit/dt=2026-03-01/0001-a.json"] = b"{}"
    for key, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    folder = tmp_path / "kept"
    first = snapshot.save(BUCKET, folder)
    assert (first.objects, first.fetched, first.deleted) == (5, 5, 0)

    # Compaction removes one file and adds another: only the change moves.
    s3.delete_object(Bucket=BUCKET, Key="lake/transactions/dt=2026-03-01/f1.parquet")
    s3.put_object(Bucket=BUCKET, Key="lake/transactions/dt=2026-03-01/merged.parquet", Body=b"m")
    second = snapshot.save(BUCKET, folder)
    assert (second.objects, second.fetched, second.deleted) == (5, 1, 1)

    s3.create_bucket(Bucket="fresh")
    time.sleep(1.1)  # the restored objects' times differ from the saved ones (whole seconds)
    assert snapshot.restore("fresh", folder) == 5
    assert bucket_contents(s3, "fresh") == bucket_contents(s3, BUCKET)
    assert not list(folder.rglob(".*.part"))
    # The next save after a restore fetches nothing that did not change since.
    after_restore = snapshot.save("fresh", folder)
    assert (after_restore.objects, after_restore.fetched, after_restore.deleted) == (5, 0, 0)


def ingest_source(s3, key: str, *records) -> dict:
    s3.put_object(Bucket=BUCKET, Key=key, Body=ndjson(*records))
    event_time = "2026-03-01T10:00:00+00:00"
    return ingest(SourceObject(bucket=BUCKET, key=key, size=None, event_time=event_time), BUCKET)


def test_the_status_counts_each_source_once_and_only_new_records(lake_s3):
    s3 = lake_s3
    watch = LakeWatch(BUCKET)
    assert watch.refresh().lake_rows == 0
    ingest_source(s3, "raw/history/dt=2026-03-01/h.ndjson", record("H-1"), record("H-2"))
    live = [record("L-1"), record("L-2"), record("L-3"), "not json"]
    ingest_source(s3, "raw/incoming/dt=2026-03-01/p-1.ndjson", *live)
    status = watch.refresh()
    assert (status.lake_rows, status.quarantined, status.live_files) == (5, 1, 1)
    assert status.last_lag_seconds is not None
    # A redelivery adds an audit record but no rows; the watch reads only the new record.
    time.sleep(0.002)  # audit keys carry the finish time in ms
    ingest_source(s3, "raw/incoming/dt=2026-03-01/p-1.ndjson", *live)
    again = watch.refresh()
    assert (again.lake_rows, again.live_files) == (5, 2)
    audit = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="audit/")["Contents"]]
    assert len(audit) == 3 and json.loads(
        s3.get_object(Bucket=BUCKET, Key=audit[-1])["Body"].read()
    )


def test_the_kept_catalog_brings_the_iceberg_tables_back_with_their_rows(lake_s3, tmp_path):
    ingest_source(lake_s3, "raw/incoming/dt=2026-03-01/p-1.ndjson", record("L-1"), record("L-2"))
    # As `up` lays them out: the catalog file beside the mirror, in a folder not made yet.
    folder, catalog_file = tmp_path / "s3" / "kept", tmp_path / "s3" / "kept.catalog.json"
    snapshot.save_catalog(tables.DEFAULT_DATABASE, catalog_file)
    snapshot.save(BUCKET, folder)
    # moto restarts: Glue and S3 are empty again.
    urllib.request.urlopen(urllib.request.Request(
        f"{os.environ['AWS_ENDPOINT_URL']}/moto-api/reset", method="POST"))  # fmt: skip
    lake_s3.create_bucket(Bucket=BUCKET)

    snapshot.restore(BUCKET, folder)
    assert snapshot.restore_catalog(tables.DEFAULT_DATABASE, catalog_file) == sorted(
        tables.ICEBERG_TABLES
    )

    assert sorted(table_rows("transactions")["transaction_id"].to_pylist()) == ["L-1", "L-2"]
    assert not snapshot.is_plain_parquet_lake(folder, catalog_file)
    assert snapshot.columns_not_kept(folder, catalog_file) == {}

    # A lake kept before transaction_items carried its baskets' store: its commits would fail.
    key = urllib.parse.urlparse(json.loads(catalog_file.read_text())["transaction_items"]).path
    kept = folder / key.lstrip("/")
    metadata = json.loads(kept.read_text())
    for table_schema in metadata["schemas"]:
        table_schema["fields"] = [f for f in table_schema["fields"] if f["name"] != "store_id"]
    kept.write_text(json.dumps(metadata))
    assert snapshot.columns_not_kept(folder, catalog_file) == {"transaction_items": ["store_id"]}


def test_up_refuses_a_lake_kept_with_an_earlier_schema_and_reset_forgets_all_of_it(tmp_path):
    from supermarket_cli.stack.config import StackConfig
    from supermarket_cli.stack.up import ChildFailed, Stack

    config = StackConfig(state_dir=tmp_path)
    config.snapshot_dir.mkdir(parents=True)
    metadata = config.snapshot_dir / "lake" / "transaction_items" / "metadata" / "1.metadata.json"
    metadata.parent.mkdir(parents=True)
    columns = [c for c in tables.arrow_schema("transaction_items").names if c != "store_id"]
    metadata.write_text(json.dumps({"current-schema-id": 0, "schemas": [
        {"schema-id": 0, "fields": [{"name": c} for c in columns]}]}))  # fmt: skip
    location = f"s3://{config.bucket}/lake/transaction_items/metadata/1.metadata.json"
    config.catalog_file.write_text(json.dumps({"transaction_items": location}))
    (config.dagster_home / "history").mkdir(parents=True)
    (config.state_dir / "loaded.json").write_text("{}")

    with pytest.raises(ChildFailed, match=r"transaction_items lacks store_id.*up --reset"):
        Stack(config, reset=False, load=True, use_aws=False).prepare_state()
    assert metadata.is_file() and config.dagster_home.is_dir()

    Stack(config, reset=True, load=True, use_aws=False).prepare_state()
    assert not config.snapshot_dir.exists() and not config.catalog_file.exists()
    assert not config.dagster_home.exists() and not (config.state_dir / "loaded.json").exists()


def test_a_kept_lake_from_before_iceberg_is_recognised(tmp_path):
    folder = tmp_path / "kept"
    (folder / "lake" / "transactions" / "dt=2026-03-01").mkdir(parents=True)

    assert snapshot.is_plain_parquet_lake(folder, tmp_path / "none.catalog.json")


def test_status_and_down_without_a_stack(tmp_path, capsys):
    from supermarket_cli.stack import up

    config = from_environment({"SUPERMARKET_STATE": str(tmp_path)})
    assert up.status(config) == 3
    assert up.down(config) == 0
    assert "no stack running" in capsys.readouterr().out


def test_down_ends_the_children_of_a_supervisor_that_was_killed(tmp_path):
    import subprocess

    from supermarket_cli.stack import up

    config = from_environment({"SUPERMARKET_STATE": str(tmp_path)})
    orphan = subprocess.Popen(python("import time; time.sleep(60)"), start_new_session=True)
    dead = subprocess.Popen(python("pass"))
    dead.wait()
    up.StackRecord(dead.pid, "running", {}, {"moto": orphan.pid}).write(config.stack_file)
    assert up.status(config) == 3  # the supervisor is gone: not running
    assert up.down(config) == 0
    assert orphan.wait(timeout=10) == -signal.SIGKILL
    assert not config.stack_file.exists()


def test_status_output_to_a_closed_pipe_is_dropped_so_the_stack_can_still_stop():
    # Given the supervisor's stdout is a pipe whose reader has gone (Ctrl-C also ends `| tee`)
    read_end, write_end = os.pipe()
    os.close(read_end)
    out = os.fdopen(write_end, "w")
    printer = StatusPrinter(out)

    # When it reports and shows status after that, nothing raises, and output stays off
    printer.message("stopping payment-processor")
    printer.show("0.0 txn/s")
    printer.message("stopped")

    assert printer.out is None
