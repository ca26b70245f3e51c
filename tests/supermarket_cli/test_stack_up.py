"""`supermarket up` as a user runs it: a subprocess with small settings, its printed URLs, the
Dagster UI listing the assets, live rows returned by `supermarket query` within seconds, then
the history's reconciliation check and the live tables' freshness passing in Dagster, then
Ctrl-C (SIGINT) leaving no process and no port behind."""

import contextlib
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import psutil
import pytest

from lake_contract import layout
from supermarket_cli.dagster_graphql import DagsterGraphQL
from supermarket_cli.processes import group_alive, group_members, http_ok, port_is_free, wait_until
from tests.factories import ndjson, record

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "up-test-lake"
HISTORY_DAYS, HISTORY_PER_DAY = 1, 300
CHECKS_PER_DAY = 7  # DAY_CHECKS in supermarket_dagster/defs/history/checks.py
DEADLINE_SECONDS = 120  # up, loaded, live rows queried, checks passed: the bound the issue sets


class Output:
    """The stack's stdout, line by line, read in the background so the pipe never fills."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, deadline: float) -> re.Match:
        def matched() -> re.Match | None:
            return next(filter(None, (re.search(pattern, line) for line in list(self.lines))), None)

        return wait_until(
            matched,
            max(0.0, deadline - time.monotonic()),
            interval=0.1,
            describe=lambda: f"no line matching {pattern!r} in:\n" + "\n".join(self.lines),
        )


def query(sql: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "supermarket_cli.main", "query", sql, "--csv", "/dev/stdout"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def count(sql: str, env: dict[str, str]) -> int:
    return int(query(sql, env).splitlines()[1])


def latest_check(dagster: DagsterGraphQL, asset: str, check: str, partition: str) -> dict:
    data = dagster.query(
        """query Check($key: AssetKeyInput!, $check: String!, $partition: String) {
             assetCheckExecutions(assetKey: $key, checkName: $check, partition: $partition,
                                  limit: 1) { status partition evaluation { success } } }""",
        {"key": {"path": [asset]}, "check": check, "partition": partition},
    )
    (execution,) = data["assetCheckExecutions"]
    return execution


def freshness(dagster: DagsterGraphQL) -> dict[str, str | None]:
    nodes = dagster.query(
        "{ assetNodes { assetKey { path } freshnessStatusInfo { freshnessStatus } } }"
    )["assetNodes"]
    return {
        node["assetKey"]["path"][-1]: (node["freshnessStatusInfo"] or {}).get("freshnessStatus")
        for node in nodes
        if node["assetKey"]["path"][-1] in ("transactions", "transaction_items")
    }


def processes_in_groups(groups: set[int]) -> list[int]:
    return [pid for group in groups for pid in group_members(group)]


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8 or ::1, also as an IPv4-mapped IPv6 address (how gRPC's dual-stack socket for
    127.0.0.1, the code server's, shows; Python 3.11 does not call ::ffff:127.0.0.1 loopback)."""
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def listening_addresses(pids: list[int]) -> set[tuple[str, int]]:
    """Where the processes accept connections (TCP, IPv4 and IPv6)."""
    found = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            for connection in psutil.Process(pid).net_connections(kind="inet"):
                if connection.status == psutil.CONN_LISTEN:
                    found.add((connection.laddr.ip, connection.laddr.port))
    return found


@pytest.mark.slow
@pytest.mark.alone  # its deadline is the bound for `up`, on an idle machine
def test_up_runs_the_stack_and_ctrl_c_stops_every_process(tmp_path):
    deadline = time.monotonic() + DEADLINE_SECONDS
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "DAGSTER_", "HISTORY_"))}  # fmt: skip
    env |= {
        "SUPERMARKET_STATE": str(state),
        "SUPERMARKET_MOTO_PORT": "0",
        "SUPERMARKET_DAGSTER_PORT": "0",
        "SUPERMARKET_DASHBOARD_PORT": "0",
        "LAKE_BUCKET": BUCKET,
        "PYTHONUNBUFFERED": "1",
    }
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "supermarket_cli.main",
            "up",
            "--skus",
            "300",
            "--history-days",
            str(HISTORY_DAYS),
            "--history-per-day",
            str(HISTORY_PER_DAY),
            "--tps",
            "20",
            "--fps",
            "4",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(up)
    try:
        dagster_url = output.wait_for(r"Dagster UI\s+(http://\S+)", deadline)[1]
        dashboard_url = output.wait_for(r"dashboard\s+(http://\S+)", deadline)[1]
        endpoint = output.wait_for(r"AWS\s+(http://\S+)", deadline)[1]

        def recorded_processes() -> dict[str, int]:
            return json.loads((state / "stack.json").read_text())["processes"]

        servers = {"moto", "lambda-runtime", "dagster-code-server", "dagster-webserver",
                   "dagster-daemon", "dashboard"}  # fmt: skip
        assert set(recorded_processes()) == servers  # the feed waits for the load
        groups = {pid for pid in recorded_processes().values() if pid}
        assert http_ok(f"{dashboard_url}/_stcore/health")

        # The UI answers and lists the assets.
        dagster = DagsterGraphQL(dagster_url)
        assert {
            "supermarkets",
            "skus",
            "raw_history_logs",
            "transactions",
            "transaction_items",
        } <= set(dagster.asset_keys())

        # Reference data and history went through real runs, the history's progress shown.
        # Loaded once every day is landed and rolled up; its day checks may still be running.
        output.wait_for(r"^loaded;", deadline)
        n = HISTORY_DAYS
        output.wait_for(f"history: {n}/{n} days landed, {n}/{n} rolled up", deadline)
        # Then the live feed starts (the main loop starts it within half a second).
        wait_until(
            lambda: set(recorded_processes()) == {*servers, "payment-processor"},
            timeout=5,
            interval=0.1,
            describe=lambda: f"recorded: {recorded_processes()}",
        )
        groups |= {pid for pid in recorded_processes().values() if pid}
        assert dagster.latest_materialization("skus")["metadata"]["rows"] == 300
        # The day partitions start at the first day loaded: the UI offers no day before it.
        first = (datetime.now(UTC).date() - timedelta(days=HISTORY_DAYS)).isoformat()
        keys = dagster.query(
            """query { assetNodes(assetKeys: [{path: ["transactions"]}]) { partitionKeys } }"""
        )["assetNodes"][0]["partitionKeys"]
        assert keys[0] == first and len(keys) == HISTORY_DAYS + 1  # and today

        # A file put now is returned by `supermarket query` within a few seconds.
        query_env = {
            **env,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        }
        marker = f"UP-{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC)
        source = f"raw/incoming/dt={now.date()}/up-test-{marker}.ndjson"
        s3 = boto3.client(  # explicit: the test process's environment stays as it was
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        s3.put_object(
            Bucket=BUCKET,
            Key=source,
            Body=ndjson(record(marker, transaction_datetime=now.isoformat())),
        )
        # Its audit record is written once its rows are committed.
        audited = f"-{layout.source_id(source)}.json"

        def committed() -> bool:
            listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="audit/").get("Contents", [])
            return any(o["Key"].endswith(audited) for o in listing)

        wait_until(committed, timeout=5, interval=0.05,
                   describe="the put file did not reach the lake in 5 s")  # fmt: skip
        found = f"SELECT count(*) FROM transactions WHERE transaction_id = '{marker}'"
        assert count(found, query_env) == 1
        # With no AWS_ENDPOINT_URL, `query` finds the stack from its state folder.
        assert count(found, env) == 1

        # The payment processor's rows are there too, and the history in full.
        live = "SELECT count(*) FROM transactions WHERE source_key LIKE 'raw/incoming/%'"
        assert count(live, query_env) > 1
        old = "SELECT count(*) FROM transactions WHERE source_key LIKE 'raw/history/%'"
        assert count(old, query_env) == HISTORY_DAYS * HISTORY_PER_DAY

        # The history day's reconciliation ran in its backfill run and passed, as up reports.
        output.wait_for(
            rf"^history day checks: {CHECKS_PER_DAY * n} of {CHECKS_PER_DAY * n} passed$", deadline
        )
        day = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
        execution = latest_check(dagster, "transactions", "raw_records_reconcile", day)
        assert execution["status"] == "SUCCEEDED" and execution["evaluation"]["success"]
        # The live tables are fresh, as Dagster's freshness daemon judges them.
        healthy = {"transactions": "HEALTHY", "transaction_items": "HEALTHY"}
        wait_until(
            lambda: freshness(dagster) == healthy,
            timeout=max(0.0, deadline - time.monotonic()),
            interval=2,
            describe=lambda: f"freshness: {freshness(dagster)}",
        )
        # Every server of the stack, Dagster's own code servers too, listens on loopback only.
        listening = listening_addresses(processes_in_groups(groups))
        assert {int(url.rsplit(":", 1)[1]) for url in (dagster_url, endpoint, dashboard_url)} <= {
            port for _, port in listening
        }
        assert all(is_loopback(ip) for ip, _ in listening), listening
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(timeout=60)
    assert code == 0, "\n".join(output.lines)
    assert output.lines[-1] == "stopped"
    # A first `up` keeps its lake for the next one.
    assert any(line.startswith("lake kept in ") for line in output.lines), output.lines[-12:]
    assert not processes_in_groups(groups), "processes left behind"
    for url in (dagster_url, endpoint, dashboard_url):
        port = int(url.rsplit(":", 1)[1])
        assert port_is_free("127.0.0.1", port)
    assert all(not group_alive(pid) for pid in groups)
    assert not (state / "stack.json").exists()
    assert time.monotonic() < deadline + 60
