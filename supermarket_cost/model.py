"""The monthly AWS cost of this design at a volume, line by line, beside a scheduled Glue job and
Firehose into Iceberg, from the measured inputs, the deployed template and the price table.

Every figure that is not measured or read from the template is a named assumption below.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from supermarket_cost.deployment import Deployment
from supermarket_cost.inputs import DashboardQuery, Linear, MeasuredInputs
from supermarket_cost.prices import GIB, MIB, Prices

HOURS_PER_MONTH = 730.0  # AWS's own month
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
SECONDS_PER_DAY = 86_400.0
GB = float(GIB)  # AWS bills storage and transfer in binary GB
TB = 1024.0**4

# Assumptions (not measured here; each is said in the README):
DEFAULT_UPLOAD_SECONDS = 10.0  # each store uploads its tills' log this often while it sells
DEFAULT_DAYS_RETAINED = 365.0
DEFAULT_REFRESHES_PER_HOUR = 12.0  # a dashboard open all day, refreshed every 5 minutes
SQS_IDLE_POLLERS = 5  # Lambda's SQS event source polls with 5 long-pollers when idle
SQS_LONG_POLL_SECONDS = 20.0
ECS_TASK_START_SECONDS = 45.0  # Fargate: image pull and start, billed, before the run worker
LAMBDA_PLATFORM_LOG_BYTES = 300.0  # START, END and REPORT lines of each invocation
XRAY_RESERVOIR_PER_SECOND = 1.0  # X-Ray's default sampling rule: 1 a second, then 5%
XRAY_RATE = 0.05
ACCESS_LOG_RECORD_BYTES = 350.0  # one S3 server access log line per request
ALERTS_PER_MONTH = 30.0  # alarm and Dagster alert messages, each one publish and one email
GLUE_JOB_DPUS = 2.0  # the smallest Spark job: 2 G.1X workers
GLUE_JOB_EVERY_SECONDS = 300.0
GLUE_JOB_OVERHEAD_SECONDS = 30.0  # Spark session, listing the new logs, the Iceberg commit
FIREHOSE_BUFFER_SECONDS = 300.0  # the Iceberg destination's default buffering interval
COMPACTION_TABLES = 2  # transactions and transaction_items, each compacted on its own


@dataclass(frozen=True)
class Workload:
    transactions_per_day: float
    stores: int = 5
    days_retained: float = DEFAULT_DAYS_RETAINED
    refreshes_per_hour: float = DEFAULT_REFRESHES_PER_HOUR
    upload_seconds: float = DEFAULT_UPLOAD_SECONDS

    def __post_init__(self) -> None:
        checks = {
            "transactions per day": (self.transactions_per_day, 1),
            "stores": (self.stores, 1),
            "days retained": (self.days_retained, 1),
            "refreshes per hour": (self.refreshes_per_hour, 0),
            "upload seconds": (self.upload_seconds, 0.001),
        }
        for name, (value, least) in checks.items():
            if not isinstance(value, int | float) or math.isnan(value) or value < least:
                raise ValueError(f"{name} must be at least {least}, got {value!r}")

    @property
    def files_per_day(self) -> float:
        """Raw logs a day: one per store per upload while it sells, never more than one per
        transaction."""
        uploads = self.stores * SECONDS_PER_DAY / self.upload_seconds
        return min(self.transactions_per_day, uploads)


@dataclass(frozen=True)
class Line:
    service: str
    item: str
    quantity: float  # per month
    unit: str
    monthly: float  # dollars

    def __post_init__(self) -> None:
        if self.monthly < 0:
            raise ValueError(f"{self.service} {self.item}: negative cost {self.monthly}")


@dataclass(frozen=True)
class Option:
    """One way of landing the feed: its lines, and how long until a transaction is queryable."""

    name: str
    lines: list[Line]
    delay: str
    delay_seconds: float  # the worst case, for sorting and tests

    @property
    def monthly(self) -> float:
        return sum(line.monthly for line in self.lines)


@dataclass(frozen=True)
class Estimate:
    workload: Workload
    design: Option
    alternatives: list[Option]
    not_counted: list[Line] = field(default_factory=list)
    one_off: list[Line] = field(default_factory=list)
    derived: dict[str, float] = field(default_factory=dict)


def _sum(requests: dict[str, Linear], prefixes: Iterable[str], files: float, txns: float) -> float:
    wanted = tuple(prefixes)
    return sum(f.at(files, txns) for kind, f in requests.items() if kind.startswith(wanted))


def _counts(requests: dict[str, float], prefixes: Iterable[str]) -> float:
    wanted = tuple(prefixes)
    return sum(n for kind, n in requests.items() if kind.startswith(wanted))


def _objects_written(requests: dict[str, Linear], files: float, txns: float) -> float:
    """Iceberg metadata objects a batch (or a run) writes: each ends in one PutObject or one
    CompleteMultipartUpload."""
    return sum(
        f.at(files, txns)
        for kind, f in requests.items()
        if kind.startswith("s3 PUT iceberg")
        and kind.endswith(("PutObject", "CompleteMultipartUpload"))
    )


PUT_TIER = ("s3 PUT", "s3 LIST")  # S3 bills LIST at the PUT price
GET_TIER = ("s3 GET",)
GLUE = ("glue ",)


@dataclass(frozen=True)
class CompactionDay:
    """A day of the open-day schedule and the nightly run, per table."""

    runs: float
    commits: float
    files_rewritten: float
    bytes_rewritten: float
    bytes_written: float
    files_at_end: float


def simulate_compaction(
    batch_files: float,
    small_file_bytes: float,
    compacted_bytes_per_small: float,
    runs: int,
    small_threshold: float,
    target: float,
    min_files: int,
) -> CompactionDay:
    """compaction.py's policy over one day of one table: `batch_files` Lambda files a day of
    `small_file_bytes` each, `runs` evenly spaced runs. A run rewrites every file under the
    threshold when there are at least min_files of them, as files of up to `target`. The policy's
    row bound (SMALL_FILE_ROWS) is not simulated: it only leaves more files alone, so the work
    priced here is an upper bound."""
    per_run = batch_files / runs
    pending = 0.0  # Lambda files since the last rewrite
    compacted: list[float] = []
    commits = rewritten = read = written = 0.0
    for _ in range(runs):
        pending += per_run
        small = [size for size in compacted if size < small_threshold]
        count = pending + len(small)
        if count < min_files:
            continue
        total = pending * compacted_bytes_per_small + sum(small)
        read += pending * small_file_bytes + sum(small)
        written += total
        rewritten += count
        commits += 1
        pieces = max(1, math.ceil(total / target))
        compacted = [s for s in compacted if s >= small_threshold] + [total / pieces] * pieces
        pending = 0.0
    return CompactionDay(runs, commits, rewritten, read, written, len(compacted) + pending)


def _fargate_hour(prices: Prices, vcpu: float, memory_gb: float) -> float:
    return vcpu * prices.fargate_vcpu_hour_arm64 + memory_gb * prices.fargate_gb_hour_arm64


def _task_seconds(prices: Prices, seconds: float) -> float:
    return max(prices.fargate_minimum_seconds, seconds)


def _query_bytes(query: DashboardQuery, workload: Workload, prices: Prices) -> tuple[float, float]:
    """(bytes billed, bytes scanned) of one query of a refresh."""
    days = workload.days_retained if query.scope_days is None else query.scope_days
    scan = query.bytes_per_scoped_transaction * workload.transactions_per_day * days
    minimum = prices.athena_minimum_mb_per_query * MIB
    return max(minimum, math.ceil(scan / MIB) * MIB), scan


def _athena(
    inputs: MeasuredInputs, workload: Workload, prices: Prices
) -> tuple[float, float, float, float]:
    """Per refresh: (bytes billed, bytes scanned, S3 GETs, Glue requests)."""
    billed = scanned = gets = glue = 0.0
    for query in inputs.dashboard:
        query_billed, query_scanned = _query_bytes(query, workload, prices)
        billed += query_billed
        scanned += query_scanned
        gets += query.s3_gets
        glue += query.glue_requests
    return billed, scanned, gets, glue


def _shared_lines(
    inputs: MeasuredInputs,
    deployment: Deployment,
    workload: Workload,
    prices: Prices,
    raw_logs: bool,
) -> list[Line]:
    """What every option pays alike: the lake's storage, the dashboard's Athena queries and
    the catalog's storage, the key and the alarms."""
    n = workload.transactions_per_day
    lake_gb = n * inputs.storage.data_bytes_per_transaction_compacted * workload.days_retained
    lake_gb = (lake_gb + inputs.storage.metadata_bytes) / GB
    lines = [
        Line(
            "S3",
            "storage: the Iceberg tables (data and metadata)",
            lake_gb,
            "GB-month",
            lake_gb * prices.s3_storage_gb_month,
        ),
    ]
    if raw_logs:
        raw_days = deployment.raw_retention_days + deployment.noncurrent_retention_days
        raw_gb = n * inputs.storage.raw_bytes_per_transaction * raw_days / GB
        lines.append(
            Line(
                "S3",
                f"storage: raw logs ({raw_days:.0f} days: lifecycle, then the old version)",
                raw_gb,
                "GB-month",
                raw_gb * prices.s3_storage_gb_month,
            )
        )
    refreshes = workload.refreshes_per_hour * HOURS_PER_MONTH
    _, _, gets, _ = _athena(inputs, workload, prices)
    for query in inputs.dashboard:
        days = query.scope_days
        scope = "every day kept" if days is None else f"{days} day{'s' if days != 1 else ''}"
        tb = _query_bytes(query, workload, prices)[0] * refreshes / TB
        lines.append(
            Line(
                "Athena",
                f"{query.view} over {scope}, {workload.refreshes_per_hour:g} refreshes an hour "
                "(10 MB minimum)",
                tb,
                "TB scanned",
                tb * prices.athena_per_tb_scanned,
            )
        )
    lines += [
        Line(
            "S3",
            "GET: Athena reading the tables",
            gets * refreshes,
            "requests",
            gets * refreshes / 1000 * prices.s3_get_per_1000,
        ),
        Line(
            "KMS",
            "the lake's key",
            deployment.kms_keys,
            "keys",
            deployment.kms_keys * prices.kms_key_month,
        ),
        Line(
            "CloudWatch",
            "alarms",
            deployment.alarms,
            "alarms",
            deployment.alarms * prices.cloudwatch_alarm_month,
        ),
    ]
    return lines


def _glue_requests_line(monthly_requests: float, prices: Prices, item: str) -> Line:
    billed = max(0.0, monthly_requests - prices.glue_free_requests)
    return Line(
        "Glue",
        f"{item} (first {prices.glue_free_requests:,.0f} free)",
        monthly_requests,
        "requests",
        billed / 1e6 * prices.glue_per_million_requests,
    )


def this_design(
    inputs: MeasuredInputs, deployment: Deployment, workload: Workload, prices: Prices
) -> tuple[Option, dict[str, float], list[Line], list[Line]]:
    from supermarket_dagster import compaction

    n = workload.transactions_per_day
    files = workload.files_per_day
    per_file = n / files
    rate = files / SECONDS_PER_DAY
    batch = max(1.0, min(float(deployment.batch_size), rate * deployment.batching_window_seconds))
    batches = files / batch  # a day
    batch_txns = batch * per_file
    seconds = inputs.batches.seconds.at(batch, batch_txns)
    memory_gb = deployment.lambda_memory_mb / 1024
    requests = inputs.batches.requests
    month = DAYS_PER_MONTH
    s = inputs.storage

    # compaction of each table, the open day every few minutes and the day just closed
    runs = round(inputs.dagster.compaction_runs_per_day)
    small = s.data_bytes_per_transaction_small / COMPACTION_TABLES * batch_txns
    compacted = s.data_bytes_per_transaction_compacted / COMPACTION_TABLES * batch_txns
    day = simulate_compaction(
        batches,
        small,
        compacted,
        runs,
        compaction.SMALL_FILE_BYTES,
        compaction.TARGET_BYTES,
        compaction.MIN_FILES,
    )
    c = inputs.compaction
    rewrite_files = day.files_rewritten * COMPACTION_TABLES
    per_run_requests = {  # the fixed part on every run, the rest per file rewritten
        kind: f.fixed * runs + f.per_file * rewrite_files for kind, f in c.requests.items()
    }
    mb_rewritten = day.bytes_rewritten * COMPACTION_TABLES / MIB
    compaction_work = c.seconds_fixed * runs + c.seconds_per_mb * mb_rewritten
    start = ECS_TASK_START_SECONDS + inputs.dagster.run_worker_start_seconds
    compaction_task_s = runs * _task_seconds(prices, start + compaction_work / runs)
    other_runs = inputs.dagster.other_runs_per_day
    other_task_s = other_runs * _task_seconds(prices, start)

    # S3 requests a day
    lambda_put = _sum(requests, PUT_TIER, batch, batch_txns) * batches
    lambda_get = _sum(requests, GET_TIER, batch, batch_txns) * batches
    producer_put = files
    ticks = SECONDS_PER_DAY / inputs.dagster.audit_sensor_seconds + (
        SECONDS_PER_DAY / inputs.dagster.late_files_sensor_seconds
    )
    sensor_list = ticks * inputs.dagster.lists_per_tick
    sensor_get = 2 * files * inputs.dagster.audit_reads_per_record
    housekeeping_runs = max(0.0, other_runs - 1)
    maint_put = _counts(per_run_requests, PUT_TIER) + housekeeping_runs * _counts(
        inputs.dagster.housekeeping_requests, PUT_TIER
    )
    maint_get = _counts(per_run_requests, GET_TIER) + housekeeping_runs * _counts(
        inputs.dagster.housekeeping_requests, GET_TIER
    )
    glue_day = (
        _sum(requests, GLUE, batch, batch_txns) * batches
        + _counts(per_run_requests, GLUE)
        + housekeeping_runs * _counts(inputs.dagster.housekeeping_requests, GLUE)
    )
    refreshes_day = workload.refreshes_per_hour * 24
    _, _, athena_gets, athena_glue = _athena(inputs, workload, prices)
    glue_day += athena_glue * refreshes_day

    # storage this design adds: audit records, old versions of what it replaces, access logs
    commits_day = batches * COMPACTION_TABLES + day.commits * COMPACTION_TABLES
    deleted_day = day.bytes_rewritten * COMPACTION_TABLES + commits_day * s.metadata_json_bytes
    noncurrent_gb = deleted_day * deployment.noncurrent_retention_days / GB
    audit_gb = files * s.audit_bytes_per_file * workload.days_retained / GB
    requests_day = (
        lambda_put + lambda_get + producer_put + sensor_list + sensor_get + maint_put + maint_get
    ) + athena_gets * refreshes_day  # every request to the bucket is a line of its access log
    access_gb = requests_day * ACCESS_LOG_RECORD_BYTES * deployment.access_log_retention_days / GB

    # SQS: S3's notification per log, the event source's receives and deletes, its idle polls
    sqs_day = files + 2 * batches + SQS_IDLE_POLLERS * SECONDS_PER_DAY / SQS_LONG_POLL_SECONDS
    log_gb_day = inputs.batches.log_bytes.at(batch, batch_txns) + LAMBDA_PLATFORM_LOG_BYTES
    log_gb_day *= batches / GB
    reservoir = XRAY_RESERVOIR_PER_SECOND * SECONDS_PER_DAY
    traces_day = min(batches, reservoir) + XRAY_RATE * max(0.0, batches - reservoir)
    if not deployment.lambda_tracing:
        traces_day = 0.0

    service = deployment.dagster_service
    run = deployment.dagster_run
    database_copies = 2 if deployment.database_multi_az else 1
    invocations = batches * month
    gb_seconds = invocations * seconds * memory_gb
    lines = [
        Line(
            "Lambda",
            "requests (one per SQS batch)",
            invocations,
            "requests",
            invocations / 1e6 * prices.lambda_per_million_requests,
        ),
        Line(
            "Lambda",
            f"duration: {seconds * 1000:.0f} ms a batch of {batch:.1f} logs x "
            f"{deployment.lambda_memory_mb} MB",
            gb_seconds,
            "GB-seconds",
            gb_seconds * prices.lambda_per_gb_second_arm64,
        ),
        Line(
            "SQS",
            "notifications, receives, deletes, idle polls",
            sqs_day * month,
            "requests",
            sqs_day * month / 1e6 * prices.sqs_per_million_requests,
        ),
        Line(
            "S3",
            "PUT: the raw logs",
            producer_put * month,
            "requests",
            producer_put * month / 1000 * prices.s3_put_per_1000,
        ),
        Line(
            "S3",
            "PUT/LIST: Lambda commits (data, manifests, metadata, audit, quarantine)",
            lambda_put * month,
            "requests",
            lambda_put * month / 1000 * prices.s3_put_per_1000,
        ),
        Line(
            "S3",
            "GET: Lambda (logs, metadata, source lookups)",
            lambda_get * month,
            "requests",
            lambda_get * month / 1000 * prices.s3_get_per_1000,
        ),
        Line(
            "S3",
            "LIST/GET: Dagster sensors reading audit records",
            (sensor_list + sensor_get) * month,
            "requests",
            (sensor_list * prices.s3_put_per_1000 + sensor_get * prices.s3_get_per_1000)
            * month
            / 1000,
        ),
        Line(
            "S3",
            f"PUT/GET: compaction ({day.commits:.0f} commits a day a table) and housekeeping",
            (maint_put + maint_get) * month,
            "requests",
            (maint_put * prices.s3_put_per_1000 + maint_get * prices.s3_get_per_1000)
            * month
            / 1000,
        ),
        Line(
            "S3",
            "storage: audit records",
            audit_gb,
            "GB-month",
            audit_gb * prices.s3_storage_gb_month,
        ),
        Line(
            "S3",
            f"storage: replaced files kept as old versions "
            f"({deployment.noncurrent_retention_days:.0f} days)",
            noncurrent_gb,
            "GB-month",
            noncurrent_gb * prices.s3_storage_gb_month,
        ),
        Line(
            "S3",
            f"storage: server access logs ({deployment.access_log_retention_days:.0f} days)",
            access_gb,
            "GB-month",
            access_gb * prices.s3_storage_gb_month,
        ),
        _glue_requests_line(glue_day * month, prices, "catalog requests: commits, Athena"),
        Line(
            "Glue",
            "catalog storage (a database, 7 tables; first million objects free)",
            8,
            "objects",
            max(0.0, 8 - prices.glue_free_objects) / 1e5 * prices.glue_per_100k_objects_month,
        ),
        Line(
            "SNS",
            "alerts (publish and email)",
            ALERTS_PER_MONTH,
            "messages",
            ALERTS_PER_MONTH
            * (prices.sns_per_million_publishes / 1e6 + prices.sns_per_100k_email / 1e5),
        ),
        Line(
            "CloudWatch",
            "Lambda logs: ingestion and storage",
            log_gb_day * month,
            "GB",
            log_gb_day * month * prices.cloudwatch_logs_ingest_gb
            + log_gb_day * deployment.log_retention_days * prices.cloudwatch_logs_storage_gb_month,
        ),
        Line(
            "X-Ray",
            "traces (default sampling: 1 a second, then 5%)",
            traces_day * month,
            "traces",
            traces_day * month / 1e6 * prices.xray_per_million_traces,
        ),
        Line(
            "ECS",
            f"Dagster service: {service.vcpu:g} vCPU, {service.memory_gb:g} GB, always on",
            HOURS_PER_MONTH * deployment.dagster_service_count,
            "task-hours",
            HOURS_PER_MONTH
            * deployment.dagster_service_count
            * _fargate_hour(prices, service.vcpu, service.memory_gb),
        ),
        Line(
            "ECS",
            f"Dagster runs: {runs} compactions, {other_runs:.0f} others a day, "
            f"{run.vcpu:g} vCPU, {run.memory_gb:g} GB each",
            (compaction_task_s + other_task_s) * month / 3600,
            "task-hours",
            (compaction_task_s + other_task_s)
            * month
            / 3600
            * _fargate_hour(prices, run.vcpu, run.memory_gb),
        ),
        Line(
            "RDS",
            f"Dagster's Postgres: {deployment.database_class}"
            f"{', Multi-AZ' if deployment.database_multi_az else ''}",
            HOURS_PER_MONTH,
            "hours",
            HOURS_PER_MONTH * database_copies * prices.rds_hour(deployment.database_class),
        ),
        Line(
            "RDS",
            "storage (gp3)",
            deployment.database_storage_gb,
            "GB-month",
            deployment.database_storage_gb * database_copies * prices.rds_gp3_gb_month,
        ),
        Line(
            "Secrets Manager",
            "the database password (managed by RDS)",
            1,
            "secrets",
            prices.secrets_manager_secret_month,
        ),
    ]
    lines += _shared_lines(inputs, deployment, workload, prices, raw_logs=True)
    feed = deployment.feed
    not_counted = [
        Line(
            "ECS",
            f"the simulated payment processor ({feed.vcpu:g} vCPU, {feed.memory_gb:g} GB)",
            HOURS_PER_MONTH,
            "task-hours",
            HOURS_PER_MONTH * _fargate_hour(prices, feed.vcpu, feed.memory_gb),
        ),
    ]
    t = inputs.throughput
    backfill_s = workload.days_retained * _task_seconds(
        prices, start + t.backfill_seconds_fixed + t.backfill_seconds_per_transaction * n
    )
    one_off = [
        Line(
            "ECS",
            f"backfill of {workload.days_retained:.0f} days of history, a run a day",
            backfill_s / 3600,
            "task-hours",
            backfill_s / 3600 * _fargate_hour(prices, run.vcpu, run.memory_gb),
        ),
    ]
    delay = deployment.batching_window_seconds + seconds
    derived = {
        "files_per_day": files,
        "transactions_per_file": per_file,
        "files_per_batch": batch,
        "batches_per_day": batches,
        "batch_seconds": seconds,
        "compaction_commits_per_day_per_table": day.commits,
        "compaction_mb_rewritten_per_day": mb_rewritten,
        "data_files_per_day_before_compaction": batches * COMPACTION_TABLES,
        "data_files_per_day_after_compaction": day.files_at_end * COMPACTION_TABLES,
        "metadata_objects_written_per_day": batches * _objects_written(requests, batch, batch_txns)
        + runs * _objects_written(c.requests, 0, 0),
    }
    option = Option(
        "this design (S3 event -> SQS -> Lambda -> Iceberg)",
        lines,
        f"~{delay:.1f} s (batching window {deployment.batching_window_seconds:g} s "
        f"+ a {seconds:.2f} s batch)",
        delay,
    )
    return option, derived, not_counted, one_off


def _commit_requests(inputs: MeasuredInputs) -> tuple[float, float, float]:
    """(PUT tier, GET tier, Glue) of one commit of both tables: a batch's fixed part."""
    r = inputs.batches.requests
    return (_sum(r, PUT_TIER, 0, 0), _sum(r, GET_TIER, 0, 0), _sum(r, GLUE, 0, 0))


def glue_job(
    inputs: MeasuredInputs, deployment: Deployment, workload: Workload, prices: Prices
) -> Option:
    """A Glue Spark job every 5 minutes converting the logs that landed since the last run."""
    n = workload.transactions_per_day
    files = workload.files_per_day
    runs_day = SECONDS_PER_DAY / GLUE_JOB_EVERY_SECONDS
    raw_mb = n * inputs.storage.raw_bytes_per_transaction / runs_day / MIB
    work = raw_mb * inputs.throughput.transform_seconds_per_raw_mb
    billed_s = max(prices.glue_job_minimum_seconds, GLUE_JOB_OVERHEAD_SECONDS + work)
    month = DAYS_PER_MONTH
    dpu_hours = runs_day * month * billed_s / 3600 * GLUE_JOB_DPUS
    put, get, glue = _commit_requests(inputs)
    lists = runs_day * max(1.0, math.ceil(files / runs_day / 1000))
    lines = [
        Line(
            "Glue",
            f"job: {runs_day:.0f} runs a day x {GLUE_JOB_DPUS:g} DPU x {billed_s:.0f} s "
            "(1-minute minimum)",
            dpu_hours,
            "DPU-hours",
            dpu_hours * prices.glue_dpu_hour,
        ),
        Line(
            "S3",
            "PUT: the raw logs",
            files * month,
            "requests",
            files * month / 1000 * prices.s3_put_per_1000,
        ),
        Line(
            "S3",
            "GET/LIST/PUT: the job (each log, a listing, one commit a run)",
            (files + lists + runs_day * (put + get)) * month,
            "requests",
            (
                (files + runs_day * get) * prices.s3_get_per_1000
                + (lists + runs_day * put) * prices.s3_put_per_1000
            )
            * month
            / 1000,
        ),
        _glue_requests_line((runs_day * glue) * month, prices, "catalog requests"),
    ]
    lines += _shared_lines(inputs, deployment, workload, prices, raw_logs=True)
    worst = GLUE_JOB_EVERY_SECONDS + billed_s
    return Option(
        "scheduled Glue job (every 5 minutes)",
        lines,
        f"{GLUE_JOB_EVERY_SECONDS / 2 + billed_s:.0f} s on average, up to {worst:.0f} s",
        worst,
    )


def firehose(
    inputs: MeasuredInputs, deployment: Deployment, workload: Workload, prices: Prices
) -> Option:
    """Data Firehose, Direct PUT of one record per transaction, Parquet into Iceberg."""
    n = workload.transactions_per_day
    record = inputs.storage.raw_bytes_per_transaction
    increment = prices.firehose_record_increment_kb * 1024
    billed_gb = n * math.ceil(record / increment) * increment / GB * DAYS_PER_MONTH
    flushes_day = SECONDS_PER_DAY / FIREHOSE_BUFFER_SECONDS
    put, get, glue = _commit_requests(inputs)
    month = DAYS_PER_MONTH
    lines = [
        Line(
            "Firehose",
            f"ingestion ({record:.0f} B records billed as "
            f"{prices.firehose_record_increment_kb:g} KB each)",
            billed_gb,
            "GB",
            billed_gb * prices.firehose_ingest_gb,
        ),
        Line(
            "Firehose",
            "format conversion to Parquet",
            billed_gb,
            "GB",
            billed_gb * prices.firehose_format_conversion_gb,
        ),
        Line(
            "S3",
            "PUT/GET: a commit per buffer flush",
            flushes_day * (put + get) * month,
            "requests",
            flushes_day
            * month
            * (put * prices.s3_put_per_1000 + get * prices.s3_get_per_1000)
            / 1000,
        ),
        _glue_requests_line(flushes_day * glue * month, prices, "catalog requests"),
    ]
    lines += _shared_lines(inputs, deployment, workload, prices, raw_logs=False)
    return Option(
        "Firehose into Iceberg (Parquet conversion)",
        lines,
        f"up to {FIREHOSE_BUFFER_SECONDS:.0f} s (the buffering interval)",
        FIREHOSE_BUFFER_SECONDS,
    )


def estimate(
    inputs: MeasuredInputs, deployment: Deployment, workload: Workload, prices: Prices
) -> Estimate:
    design, derived, not_counted, one_off = this_design(inputs, deployment, workload, prices)
    billed, scanned, _, _ = _athena(inputs, workload, prices)
    derived |= {
        "athena_bytes_scanned_per_refresh": scanned,
        "athena_bytes_billed_per_refresh": billed,
    }
    alternatives = [
        glue_job(inputs, deployment, workload, prices),
        firehose(inputs, deployment, workload, prices),
    ]
    return Estimate(workload, design, alternatives, not_counted, one_off, derived)
