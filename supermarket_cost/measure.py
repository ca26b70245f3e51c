"""Measures the cost model's inputs on the moto-backed lake: the handler on SQS batches of live
logs (duration, peak memory, requests by kind), compaction and housekeeping, the sensors' reads,
bytes per transaction before and after compaction with the Iceberg metadata, a history backfill,
and the bytes a dashboard refresh's views read. Requests are counted where every client
arrives: in the moto server itself (counting_moto)."""

import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from supermarket_cost.inputs import (
    Batches,
    Compaction,
    Dagster,
    DashboardQuery,
    Linear,
    MeasuredInputs,
    Storage,
    Throughput,
)

BUCKET = "cost-bench"
MB = 1024 * 1024
_BETWEEN = re.compile(r"dt BETWEEN DATE '(\d{4}-\d\d-\d\d)' AND DATE '(\d{4}-\d\d-\d\d)'")


@dataclass(frozen=True)
class Scale:
    """How much to measure: batches of (files, transactions per file), history days."""

    shapes: tuple[tuple[int, int], ...]
    batches_per_shape: int
    history_days: int
    history_per_day: int
    range_days: int = 7  # the dashboard's default range: the last 7 days, today included


FULL = Scale(((1, 1), (2, 25), (10, 50), (10, 400)), 12, 8, 20_000)
SMALL = Scale(((1, 1), (4, 20)), 3, 2, 500, range_days=3)


# -- the counting moto server ------------------------------------------------------------------


class Requests:
    """The counting server's totals; `since(before)` gives what happened in between."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def now(self) -> dict[str, Counter[str]]:
        with urllib.request.urlopen(f"{self.endpoint}/_cost/counts") as answer:
            data = json.load(answer)
        return {name: Counter(values) for name, values in data.items()}

    @staticmethod
    def since(before: dict[str, Counter[str]], after: dict[str, Counter[str]]) -> dict:
        return {name: after[name] - before[name] for name in after}


@contextmanager
def counting_moto() -> Iterator[Requests]:
    """The counting moto server as its own process on a free loopback port, with this
    process's AWS environment pointed at it."""
    from lake_contract import s3
    from lambda_ingest import handler
    from supermarket_cli.processes import ChildSpec, Supervisor, free_port, http_ok

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "supermarket_cost.counting_moto", "-p", str(port)]
    spec = ChildSpec(
        "counting-moto",
        argv,
        dict(os.environ),
        ready=lambda: http_ok(f"{endpoint}/moto-api/"),
        address=("127.0.0.1", port),
    )
    saved = dict(os.environ)
    with Supervisor(None) as supervisor, tempfile.TemporaryDirectory() as folder:
        supervisor.start(spec)
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="cost",
            AWS_SECRET_ACCESS_KEY="cost",
            LAKE_COMMIT_LOCK=f"{folder}/commit.lock",
        )
        for name in ("LAKE_BUCKET", "GLUE_DATABASE"):
            os.environ.pop(name, None)
        s3.aws_client.cache_clear()
        handler.lake_tables.cache_clear()
        try:
            yield Requests(endpoint)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            s3.aws_client.cache_clear()
            handler.lake_tables.cache_clear()


# -- small helpers ----------------------------------------------------------------------------


class PeakRss:
    """The process's highest RSS while in the block, sampled every 5 ms."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(0.005)

    def __enter__(self) -> "PeakRss":
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class LogBytes(logging.Handler):
    """Bytes of the handler's own log lines (CloudWatch Logs ingests them)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.bytes += len(record.getMessage().encode()) + 1


def fit(samples: list[tuple[float, float]], values: list[float]) -> Linear:
    """Least squares of values on (1, files, transactions); a negative term is refitted
    without it, so no term is below zero."""
    columns = [0, 1, 2]
    rows = np.array([[1.0, f, t] for f, t in samples])
    target = np.array(values, dtype=float)
    while True:
        solution, *_ = np.linalg.lstsq(rows[:, columns], target, rcond=None)
        negative = [c for c, v in zip(columns, solution, strict=True) if v < -1e-12 and c]
        if not negative:
            break
        columns.remove(negative[0])
    terms = dict.fromkeys(range(3), 0.0) | {
        c: max(0.0, float(v)) for c, v in zip(columns, solution, strict=True)
    }
    return Linear(terms[0], terms[1], terms[2])


def _sqs_event(bucket: str, keys: list[str]) -> dict[str, Any]:
    """An SQS batch as Lambda's event source mapping hands it over, one S3 record each."""
    now = datetime.now(UTC).isoformat()
    return {
        "Records": [
            {
                "eventSource": "aws:sqs",
                "messageId": str(uuid.uuid4()),
                "body": json.dumps(
                    {
                        "Records": [
                            {
                                "eventSource": "aws:s3",
                                "eventName": "ObjectCreated:Put",
                                "eventTime": now,
                                "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
                            }
                        ]
                    }
                ),
            }
            for key in keys
        ]
    }


def _lines(data: bytes) -> int:
    return data.count(b"\n")


def _live_bytes(table: Any, day: date | None = None) -> tuple[int, int]:
    """(data files, bytes) the table's current snapshot holds (of one day, when given)."""
    from lake_contract.tables import day_filter

    scan = table.scan(row_filter=day_filter(table.name()[-1], day)) if day else table.scan()
    files = list(scan.plan_files())
    return len(files), sum(task.file.file_size_in_bytes for task in files)


def _kinds(delta: dict[str, Counter[str]]) -> dict[str, float]:
    return {kind: float(n) for kind, n in delta["requests"].items() if n}


# -- the phases -------------------------------------------------------------------------------


def _live_batches(requests: Requests, scale: Scale, log: Callable[[str], None]) -> dict:
    from lake_contract import tables
    from lambda_ingest.handler import lake_tables, lambda_handler
    from simulator.payment_processor import FeedOptions, PaymentProcessor
    from supermarket_dagster.compaction import compact_day

    lake = lake_tables(tables.database_from_environment())
    today = datetime.now(UTC).date()
    samples: list[dict[str, Any]] = []
    compactions: list[dict[str, Any]] = []
    raw_bytes = raw_transactions = 0
    small_bytes = small_transactions = 0
    capture = LogBytes()
    logging.getLogger("lambda_ingest").addHandler(capture)
    for number, (files, per_file) in enumerate(scale.shapes):
        feed = PaymentProcessor(
            FeedOptions(
                f"s3://{BUCKET}",
                transactions_per_second=per_file,
                files_per_second=1.0,
                producer_id=f"shape{number}",
            )
        )
        for _ in range(scale.batches_per_shape):
            keys = [feed.write_file() for _ in range(files)]
            bodies = [_raw_log(key) for key in keys]
            transactions = sum(_lines(b) for b in bodies)
            raw_bytes += sum(len(b) for b in bodies)
            raw_transactions += transactions
            logged = capture.bytes
            before = requests.now()
            with PeakRss() as rss:
                began = time.perf_counter()
                answer = lambda_handler(_sqs_event(BUCKET, keys), None)
                seconds = time.perf_counter() - began
            if answer["batchItemFailures"]:
                raise RuntimeError(f"batch failed: {answer}")
            delta = Requests.since(before, requests.now())
            samples.append(
                {
                    "files": files,
                    "transactions": transactions,
                    "seconds": seconds,
                    "rss": rss.peak,
                    "log_bytes": capture.bytes - logged,
                    "requests": _kinds(delta),
                }
            )
        log(
            f"  {scale.batches_per_shape} batches of {files} files x ~{per_file} transactions: "
            f"median {np.median([s['seconds'] for s in samples[-scale.batches_per_shape :]]):.3f} s"
        )
        if number == 0 or number == len(scale.shapes) - 1:
            if number == len(scale.shapes) - 1:  # the small files as the Lambda wrote them
                for name in ("transactions", "transaction_items"):
                    small_bytes += _live_bytes(lake.current(name), today)[1]
                small_transactions = raw_transactions
            compactions.append(_compact(requests, lake, today, compact_day))
    logging.getLogger("lambda_ingest").removeHandler(capture)
    return {
        "samples": samples,
        "compactions": compactions,
        "raw_bytes_per_transaction": raw_bytes / raw_transactions,
        "small_bytes_per_transaction": small_bytes / small_transactions,
        "live_transactions": raw_transactions,
    }


def _raw_log(key: str) -> bytes:
    """A log as the feed wrote it (read before the batch is counted)."""
    from lake_contract.s3 import LakeBucket

    return LakeBucket(BUCKET).read(key)


def _compact(requests: Requests, lake: Any, day: date, compact_day: Callable) -> dict[str, Any]:
    before = requests.now()
    began = time.perf_counter()
    done = [
        compact_day(lake, table, day, min_files=1)
        for table in ("transactions", "transaction_items")
    ]
    seconds = time.perf_counter() - began
    delta = Requests.since(before, requests.now())
    return {
        "files": sum(d.files_rewritten for d in done),
        "bytes": sum(d.bytes_rewritten for d in done),
        "seconds": seconds,
        "requests": _kinds(delta),
    }


def _history(requests: Requests, scale: Scale, log: Callable[[str], None]) -> dict[str, Any]:
    """History days backfilled as the history asset does it (convert + land), timed."""
    from lake_contract import layout, tables
    from lake_contract.parquet import parquet_bytes
    from lake_contract.s3 import LakeBucket
    from lambda_ingest.events import SourceObject
    from lambda_ingest.handler import convert, lake_tables, land
    from lambda_ingest.transform import transform
    from simulator.history import HistoryOptions, history_key, plan_files, render_file
    from simulator.reference import build_reference, generate_skus, generate_supermarkets

    bucket = LakeBucket(BUCKET)
    for name, table in (
        ("supermarkets", generate_supermarkets(5, 0)),
        ("skus", generate_skus(12_000, 0)),
    ):
        bucket.write(layout.reference_key(name), parquet_bytes(table))
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    options = HistoryOptions(
        location=f"s3://{BUCKET}",
        transactions=scale.history_days * scale.history_per_day,
        start=yesterday - timedelta(days=scale.history_days - 1),
        end=yesterday,
        file_transactions=scale.history_per_day,
    )
    reference = build_reference(options.stores, options.skus, options.seed)
    timings, transform_rates = [], []
    for file in plan_files(options):
        key = history_key(options, file)
        body = render_file(options, reference, file)
        bucket.client.put_object(Bucket=BUCKET, Key=key, Body=body)
        began = time.perf_counter()
        transform(body, key)
        transform_rates.append((time.perf_counter() - began) / (len(body) / MB))
        began = time.perf_counter()
        converted = convert(SourceObject(BUCKET, key, None, None), BUCKET)
        land([converted] if converted else [], tables.database_from_environment())
        timings.append(((0.0, float(file.transactions)), time.perf_counter() - began))
    backfill = fit([s for s, _ in timings], [t for _, t in timings])
    log(f"  backfilled {scale.history_days} history days in {len(timings)} logs")
    lake = lake_tables(tables.database_from_environment())
    stored = sum(
        _live_bytes(lake.current(name))[1] for name in ("transactions", "transaction_items")
    )
    return {
        "backfill": backfill,
        "transform_seconds_per_mb": float(np.median(transform_rates)),
        "bytes_per_transaction": stored / sum(t for (_, t), _ in timings),
    }


def _housekeeping(requests: Requests) -> dict[str, float]:
    from lake_contract import tables
    from lake_contract.s3 import LakeBucket
    from lambda_ingest.handler import lake_tables
    from supermarket_dagster import compaction

    lake = lake_tables(tables.database_from_environment())
    before = requests.now()
    later = datetime.now(UTC) + 2 * compaction.ORPHAN_MIN_AGE  # what an hour later removes
    for table in tables.ICEBERG_TABLES:
        compaction.expire_snapshots(lake, table)
        compaction.remove_orphans(lake, LakeBucket(BUCKET), table, now=later)
    return _kinds(Requests.since(before, requests.now()))


def _sensors(requests: Requests) -> dict[str, float]:
    """What one sensor tick costs per audit record: the listing and a GET each."""
    from lake_contract.s3 import LakeBucket
    from supermarket_dagster import audit_log

    lake = LakeBucket(BUCKET)
    before = requests.now()
    keys, _ = audit_log.new_audit_keys(lake, None, audit_log.MAX_RECORDS_PER_TICK)
    audit_log.read_records(lake, keys)
    delta = Requests.since(before, requests.now())["requests"]
    gets = sum(n for kind, n in delta.items() if kind.startswith("s3 GET audit"))
    lists = sum(n for kind, n in delta.items() if kind.startswith("s3 LIST"))
    return {
        "records": float(len(keys)),
        "gets_per_record": gets / max(1, len(keys)),
        "lists_per_tick": float(lists),
    }


def _dashboard(requests: Requests, scale: Scale) -> list[DashboardQuery]:
    """One refresh of the dashboard's figures with every day re-read (what QuickSight's
    visuals or a filter change ask), each view's Parquet bytes per transaction in its scope."""
    from supermarket_dashboard.figures import Filters, figures
    from supermarket_queries.engine import LocalEngine

    engine = LocalEngine(f"s3://{BUCKET}")
    engine.connection.execute("SET enable_external_file_cache = false")  # read as Athena does
    per_day = {
        row["dt"]: row["n"]
        for row in engine.query(
            "SELECT dt, count(*) AS n FROM transactions GROUP BY dt"
        ).to_pylist()
    }
    today = datetime.now(UTC).date()
    filters = Filters(today - timedelta(days=scale.range_days - 1), today)
    calls: list[DashboardQuery] = []
    real_view = engine.view

    def counted_view(name: str, where: str | None = None) -> Any:
        before = requests.now()
        rows = real_view(name, where)
        delta = Requests.since(before, requests.now())
        parquet = sum(
            n
            for k, n in delta["bytes_out"].items()
            if k.startswith("s3 GET") and k.split()[2] in ("data", "lake")
        )
        gets = sum(n for k, n in delta["requests"].items() if k.startswith("s3 GET"))
        glue = sum(n for k, n in delta["requests"].items() if k.startswith("glue"))
        found = _BETWEEN.search(where or "")
        if found:
            first, last = (date.fromisoformat(d) for d in found.groups())
            scope: int | None = (last - first).days + 1
            scoped = sum(n for d, n in per_day.items() if first <= d <= last)
        else:
            scope, scoped = None, sum(per_day.values())
        calls.append(DashboardQuery(name, scope, parquet / max(1, scoped), gets, glue))
        return rows

    engine.view = counted_view  # type: ignore[method-assign]
    figures(engine, filters, datetime.now(UTC))  # the first: DuckDB learns the files
    calls.clear()
    figures(engine, filters, datetime.now(UTC))
    return calls


def _run_worker_start() -> float:
    """A run worker's imports: what every Dagster run pays before its step."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import supermarket_dagster.definitions"], check=True)
    return time.perf_counter() - began


def _dagster_schedule() -> dict[str, float]:
    from supermarket_dagster.defs.live.sensors import lake_audit_sensor
    from supermarket_dagster.defs.maintenance.schedules import (
        OPEN_DAY_CRON,
        hourly_housekeeping,
        nightly_compaction,
    )
    from supermarket_dagster.defs.maintenance.sensors import late_files_sensor

    def per_day(cron: str) -> float:
        minute, hour, *rest = cron.split()
        if rest != ["*", "*", "*"]:
            raise ValueError(f"cannot count the runs of {cron!r}")
        minutes = 60 / int(minute[2:]) if minute.startswith("*/") else 1
        return minutes * (24 if hour == "*" else 1)

    return {
        "audit_sensor_seconds": float(lake_audit_sensor.minimum_interval_seconds or 30),
        "late_files_sensor_seconds": float(late_files_sensor.minimum_interval_seconds or 30),
        "compaction_runs_per_day": per_day(OPEN_DAY_CRON)
        + per_day(nightly_compaction.cron_schedule),
        # housekeeping, and the rollup of the day just closed
        "other_runs_per_day": per_day(hourly_housekeeping.cron_schedule) + 1,
    }


def _storage() -> dict[str, float]:
    from lake_contract import tables
    from lake_contract.s3 import LakeBucket

    bucket = LakeBucket(BUCKET)
    metadata = sum(
        o.size for t in tables.ICEBERG_TABLES for o in bucket.listing(f"lake/{t}/metadata/")
    )
    json_sizes = [
        o.size
        for o in bucket.listing("lake/transactions/metadata/")
        if o.key.endswith(".metadata.json")
    ]
    audits = bucket.listing("audit/")
    return {
        "metadata": float(metadata),
        "metadata_json": float(max(json_sizes)),
        "audit_per_file": sum(o.size for o in audits) / max(1, len(audits)),
    }


def measure(scale: Scale = FULL, log: Callable[[str], None] = print) -> MeasuredInputs:
    """Every input of the cost model, measured on a fresh counting moto server."""
    import duckdb
    import moto
    import pyiceberg

    from lake_contract import tables
    from lake_contract.s3 import LakeBucket

    load = os.getloadavg()
    with counting_moto() as requests:
        LakeBucket(BUCKET).create()
        tables.create_tables(tables.glue_catalog(), f"s3://{BUCKET}")
        log(f"measuring on moto {moto.__version__}, load {load[0]:.2f}")
        history = _history(requests, scale, log)
        live = _live_batches(requests, scale, log)
        storage = _storage()
        sensors = _sensors(requests)
        dashboard = _dashboard(requests, scale)
        housekeeping = _housekeeping(requests)
    schedule = _dagster_schedule()
    start = _run_worker_start()
    samples = live["samples"]
    shapes = [(float(s["files"]), float(s["transactions"])) for s in samples]
    kinds = sorted({k for s in samples for k in s["requests"]})
    compactions = live["compactions"]
    compaction_kinds = sorted({k for c in compactions for k in c["requests"]})
    rewrite = [(float(c["files"]), 0.0) for c in compactions]
    seconds = fit(
        [(c["bytes"] / MB, 0.0) for c in compactions], [c["seconds"] for c in compactions]
    )
    return MeasuredInputs(
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": str(os.cpu_count()),
            "load_average_1m": f"{load[0]:.2f}",
            "moto": moto.__version__,
            "pyiceberg": pyiceberg.__version__,
            "duckdb": duckdb.__version__,
        },
        scale={
            "shapes": [list(s) for s in scale.shapes],
            "batches_per_shape": scale.batches_per_shape,
            "history_days": scale.history_days,
            "history_per_day": scale.history_per_day,
            "range_days": scale.range_days,
            "live_transactions": live["live_transactions"],
        },
        batches=Batches(
            samples=len(samples),
            seconds=fit(shapes, [s["seconds"] for s in samples]),
            peak_rss_mb=max(s["rss"] for s in samples) / MB,
            log_bytes=fit(shapes, [s["log_bytes"] for s in samples]),
            requests={k: fit(shapes, [s["requests"].get(k, 0.0) for s in samples]) for k in kinds},
        ),
        compaction=Compaction(
            samples=len(compactions),
            seconds_fixed=seconds.fixed,
            seconds_per_mb=seconds.per_file,
            requests={
                k: fit(rewrite, [c["requests"].get(k, 0.0) for c in compactions])
                for k in compaction_kinds
            },
        ),
        storage=Storage(
            raw_bytes_per_transaction=live["raw_bytes_per_transaction"],
            data_bytes_per_transaction_small=live["small_bytes_per_transaction"],
            data_bytes_per_transaction_compacted=history["bytes_per_transaction"],
            metadata_bytes=storage["metadata"],
            metadata_json_bytes=storage["metadata_json"],
            audit_bytes_per_file=storage["audit_per_file"],
        ),
        dashboard=dashboard,
        dagster=Dagster(
            audit_sensor_seconds=schedule["audit_sensor_seconds"],
            late_files_sensor_seconds=schedule["late_files_sensor_seconds"],
            audit_reads_per_record=sensors["gets_per_record"],
            lists_per_tick=sensors["lists_per_tick"],
            compaction_runs_per_day=schedule["compaction_runs_per_day"],
            other_runs_per_day=schedule["other_runs_per_day"],
            housekeeping_requests=housekeeping,
            run_worker_start_seconds=start,
        ),
        throughput=Throughput(
            transform_seconds_per_raw_mb=history["transform_seconds_per_mb"],
            backfill_seconds_per_transaction=history["backfill"].per_transaction,
            backfill_seconds_fixed=history["backfill"].fixed,
        ),
        notes=[
            "measured on moto on loopback: request counts and bytes are the code's own; "
            "durations are this machine's against moto, not AWS's latencies",
        ],
    )
