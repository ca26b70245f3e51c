"""`supermarket soak`: its reconciliation catches a lost, a duplicated and an unexpected
transaction; and a short soak (one minute of producers, a small rate, every fault kind at least
once) ends with nothing lost and nothing duplicated."""

import json
import os
import subprocess
import sys
from pathlib import Path

from lake_contract import tables
from lake_contract.s3 import LakeBucket
from lambda_ingest.committer import commit_sources
from lambda_ingest.events import SourceObject
from lambda_ingest.handler import ingest
from lambda_ingest.transform import transform
from supermarket_cli.soak.reconcile import reconcile
from tests.factories import ndjson, record
from tests.moto_server import iceberg_lake

BUCKET = "soak-lake"
ROOT = Path(__file__).resolve().parents[2]
FAULT_KINDS = {"s3_errors", "runtime_sigkill", "redelivered_notifications", "bad_files",
               "second_runtime", "dagster_daemon_sigkill"}  # fmt: skip


def test_the_reconciliation_finds_a_lost_a_duplicated_and_an_unexpected_transaction(monkeypatch):
    with iceberg_lake(monkeypatch, BUCKET):
        lake = LakeBucket(BUCKET)
        landed, lost = (
            "raw/incoming/dt=2026-03-01/p1.ndjson",
            "raw/incoming/dt=2026-03-01/p2.ndjson",
        )
        lake.write(landed, ndjson(record("T-1"), record("T-2"), record("T-3")))
        lake.write(lost, ndjson(record("T-4")))  # written, never ingested
        ingest(SourceObject(BUCKET, landed, None, None), BUCKET)
        lake_tables = tables.LakeTables(tables.glue_catalog(), tables.DEFAULT_DATABASE)
        clean, _ = reconcile(lake, lake_tables, [])
        assert (clean.produced, clean.landed, clean.missing) == (4, 3, 1) and not clean.passed
        ghost = "raw/incoming/dt=2026-03-01/ghost.ndjson"  # rows with no raw object behind them
        commit_sources(lake_tables, [(ghost, transform(ndjson(record("T-1"), record("X-9")),
                                                       ghost))], {})  # fmt: skip

        found, _ = reconcile(lake, lake_tables, [])

    assert (found.missing, found.duplicated, found.unexpected) == (1, 1, 1)
    assert found.duplicated_items == 2  # T-1's two lines, twice
    assert found.samples == {"missing": ["T-4"], "unexpected": ["X-9"], "duplicated": ["T-1"],
                             "duplicated_items": ["T-1#1", "T-1#2"]}  # fmt: skip
    assert not found.passed


def test_a_short_soak_with_every_fault_kind_loses_and_duplicates_nothing(tmp_path):
    report_file = tmp_path / "report.json"
    env = {**os.environ, "SOAK_REPORT_JSON": str(report_file)}
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "LAKE_BUCKET"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "supermarket_cli.main", "soak", "--minutes", "1", "--rate", "10",
         "--large-file-mb", "2", "--state", str(tmp_path / "state")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1400,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report = json.loads(report_file.read_text())
    r = report["reconciliation"]
    assert report["passed"]  # the run's verdict: reconciliation, checks, no problem
    assert (r["missing"], r["duplicated"], r["duplicated_items"], r["unexpected"]) == (0, 0, 0, 0)
    assert r["produced"] == r["landed"] > 1000  # producers, history and the bad files' good ones
    assert {f["kind"] for f in report["faults"]} == FAULT_KINDS
    assert sum(report["proxy"]["faults"].values()) > 0
    assert report["restarts"]["lambda-runtime"] >= 1 and report["restarts"]["dagster-daemon"] >= 1
    assert report["redeliveries"] > 0
    peaks = report["peak_rss_by_child"]  # each child's own peak; together at least the summed one
    assert {"soak", "moto", "lambda-runtime", "dagster-daemon", "fault-proxy"} <= set(peaks)
    assert sum(peaks.values()) >= report["peak_rss_mib"] * 0.999
    for slow in report["slowest_outside_faults"]:
        assert slow["source_key"].startswith("raw/incoming/") and slow["lag_seconds"] >= 0
    reasons = " ".join(r["quarantine_reasons"])
    for rule in ("already in the lake from", "repeats line", "gzip", "UTF-", "array"):
        assert rule in reasons, reasons
    assert report["dagster_checks"] and all(
        all(c.values()) for c in report["dagster_checks"].values()
    )
    assert "PASSED" in done.stdout
