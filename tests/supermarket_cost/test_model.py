"""Every line item against a hand computation for one small case: 8,640 transactions a day from
one store uploading every 10 s (one transaction a log, one log a batch), 100 days retained, 12
refreshes an hour, with round measured inputs and a round deployment."""

import math

import pytest

from supermarket_cost.deployment import Deployment, EcsTask
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
from supermarket_cost.model import Workload, estimate, simulate_compaction
from supermarket_cost.prices import DEFAULT_PRICES as P

MONTH = 730 / 24  # days
GB = 1024**3
MIB = 1024**2
DAY = 8640  # transactions, logs and batches a day
BATCHES = DAY * MONTH  # a month

DEPLOYMENT = Deployment(
    lambda_memory_mb=2048,
    lambda_architecture="arm64",
    lambda_tracing=True,
    batch_size=10,
    batching_window_seconds=1.0,
    dagster_service=EcsTask(1.0, 4.0),
    dagster_service_count=1,
    dagster_run=EcsTask(1.0, 4.0),
    feed=EcsTask(0.25, 0.5),
    database_class="db.t4g.small",
    database_multi_az=True,
    database_storage_gb=20.0,
    alarms=4,
    kms_keys=1,
    raw_retention_days=90.0,
    noncurrent_retention_days=30.0,
    access_log_retention_days=365.0,
    log_retention_days=90.0,
)

INPUTS = MeasuredInputs(
    measured_at="2026-12-02T00:00:00+00:00",
    machine={"platform": "hand", "load_average_1m": "0"},
    scale={},
    batches=Batches(
        samples=1,
        seconds=Linear(0.5, 0.1, 0.001),
        peak_rss_mb=300.0,
        log_bytes=Linear(100.0, 200.0, 0.0),
        requests={
            "s3 PUT data PutObject": Linear(2, 0, 0),
            "s3 PUT audit PutObject": Linear(0, 1, 0),
            "s3 LIST bucket ListObjects": Linear(1, 0, 0),
            "s3 GET raw GetObject": Linear(0, 1, 0),
            "s3 DELETE quarantine DeleteObject": Linear(0, 1, 0),
            "glue UpdateTable": Linear(2, 0, 0),
        },
    ),
    compaction=Compaction(
        samples=2,
        seconds_fixed=0.5,
        seconds_per_mb=1.0,
        requests={
            "s3 GET data GetObject": Linear(4, 3, 0),
            "s3 PUT data PutObject": Linear(2, 0, 0),
        },
    ),
    storage=Storage(
        raw_bytes_per_transaction=500.0,
        data_bytes_per_transaction_small=200.0,
        data_bytes_per_transaction_compacted=100.0,
        metadata_bytes=1e6,
        metadata_json_bytes=10_000.0,
        audit_bytes_per_file=700.0,
    ),
    dashboard=[
        DashboardQuery("ranged", 7, 10.0, 5, 100),
        DashboardQuery("everything", None, 1.0, 3, 100),
    ],
    dagster=Dagster(
        audit_sensor_seconds=10.0,
        late_files_sensor_seconds=30.0,
        audit_reads_per_record=1.0,
        lists_per_tick=1.0,
        compaction_runs_per_day=2.0,
        other_runs_per_day=25.0,
        housekeeping_requests={
            "s3 GET iceberg_manifest GetObject": 10.0,
            "s3 LIST bucket ListObjects": 3.0,
        },
        run_worker_start_seconds=10.0,
    ),
    throughput=Throughput(0.05, 0.0001, 1.0),
)
WORKLOAD = Workload(DAY, stores=1, days_retained=100, refreshes_per_hour=12, upload_seconds=10)
FARGATE_HOUR = 1 * 0.03238 + 4 * 0.00356  # 1 vCPU, 4 GB

# compaction by hand: 2 runs of 4,320 one-transaction files a table, 100 B each (50 compacted)
COMPACTION_READ = 4320 * 100 + (4320 * 100 + 4320 * 50)  # run 2 re-reads run 1's file
COMPACTION_FILES = 4320 + 4321
COMPACTION_GETS = 4 * 2 + 3 * COMPACTION_FILES * 2 + 24 * 10  # + housekeeping
COMPACTION_PUTS = 2 * 2 + 24 * 3
LAMBDA_PUTS, LAMBDA_GETS = 4 * DAY, DAY
SENSOR_LISTS, SENSOR_GETS = 8640 + 2880, 2 * DAY
REQUESTS_A_DAY = (
    LAMBDA_PUTS + LAMBDA_GETS + DAY + SENSOR_LISTS + SENSOR_GETS + COMPACTION_PUTS + COMPACTION_GETS
) + (5 + 3) * 12 * 24  # and Athena's GETs
ATHENA_TB = 2 * 10 * MIB * 12 * 730 / 1024**4  # both queries under the 10 MB minimum

EXPECTED = {
    ("Lambda", "requests"): BATCHES * 0.20 / 1e6,
    ("Lambda", "duration"): BATCHES * 0.601 * 2 * 0.0000133334,
    ("SQS", "notifications"): (DAY + 2 * DAY + 5 * 86400 / 20) * MONTH * 0.40 / 1e6,
    ("S3", "PUT: the raw logs"): DAY * MONTH * 0.005 / 1000,
    ("S3", "PUT/LIST: Lambda"): LAMBDA_PUTS * MONTH * 0.005 / 1000,
    ("S3", "GET: Lambda"): LAMBDA_GETS * MONTH * 0.0004 / 1000,
    ("S3", "LIST/GET: Dagster sensors"): (SENSOR_LISTS * 0.005 + SENSOR_GETS * 0.0004)
    * MONTH
    / 1000,
    ("S3", "PUT/GET: compaction"): (COMPACTION_PUTS * 0.005 + COMPACTION_GETS * 0.0004)
    * MONTH
    / 1000,
    ("S3", "storage: audit"): DAY * 700 * 100 / GB * 0.023,
    ("S3", "storage: replaced files"): (2 * COMPACTION_READ + (2 * DAY + 2 * 2) * 10_000)
    * 30
    / GB
    * 0.023,
    ("S3", "storage: server access logs"): REQUESTS_A_DAY * 350 * 365 / GB * 0.023,
    ("Glue", "catalog requests: commits"): ((2 * DAY + 200 * 288) * MONTH - 1e6) / 1e6,
    ("Glue", "catalog storage"): 0.0,
    ("SNS", "alerts"): 30 * (0.50 / 1e6 + 2.00 / 1e5),
    ("CloudWatch", "Lambda logs"): 600 * DAY / GB * (MONTH * 0.50 + 90 * 0.03),
    ("X-Ray", "traces"): BATCHES * 5.00 / 1e6,
    ("ECS", "Dagster service"): 730 * FARGATE_HOUR,
    ("ECS", "Dagster runs"): (2 + 25) * 60 / 3600 * MONTH * FARGATE_HOUR,
    ("RDS", "Dagster's Postgres"): 730 * 2 * 0.032,
    ("RDS", "storage"): 20 * 2 * 0.115,
    ("Secrets Manager", "the database password"): 0.40,
    ("S3", "storage: the Iceberg tables"): (DAY * 100 * 100 + 1e6) / GB * 0.023,
    ("S3", "storage: raw logs"): DAY * 500 * 120 / GB * 0.023,
    ("Athena", "ranged over 7 days"): ATHENA_TB / 2 * 5.00,
    ("Athena", "everything over every day kept"): ATHENA_TB / 2 * 5.00,
    ("S3", "GET: Athena"): (5 + 3) * 12 * 730 * 0.0004 / 1000,
    ("KMS", "the lake's key"): 1.00,
    ("CloudWatch", "alarms"): 0.40,
}


def _line(option, service, item):
    (found,) = [x for x in option.lines if x.service == service and x.item.startswith(item)]
    return found


def test_every_line_item_of_this_design_matches_the_hand_computation():
    design = estimate(INPUTS, DEPLOYMENT, WORKLOAD, P).design
    assert len(design.lines) == len(EXPECTED)  # no line untested, none missing
    for (service, item), dollars in EXPECTED.items():
        assert _line(design, service, item).monthly == pytest.approx(dollars, rel=1e-9), item


def test_the_alternatives_match_the_hand_computation():
    glue, firehose = estimate(INPUTS, DEPLOYMENT, WORKLOAD, P).alternatives
    # 288 runs a day, each far under a minute of work: billed a minute at 2 DPUs
    assert _line(glue, "Glue", "job").monthly == pytest.approx(288 * MONTH / 60 * 2 * 0.44)
    assert glue.delay_seconds == 300 + 60
    gb = DAY * 5 * 1024 / GB * MONTH  # each 500 B record billed as 5 KB
    assert _line(firehose, "Firehose", "ingestion").monthly == pytest.approx(gb * 0.029)
    assert _line(firehose, "Firehose", "format conversion").monthly == pytest.approx(gb * 0.018)
    assert not [x for x in firehose.lines if x.item.startswith("storage: raw logs")]  # no files
    shared = {x.item: x.monthly for x in estimate(INPUTS, DEPLOYMENT, WORKLOAD, P).design.lines}
    assert _line(glue, "Athena", "ranged").monthly == shared[_line(glue, "Athena", "ranged").item]


def test_athena_rounds_each_query_up_to_the_megabyte_above_the_minimum():
    big = Workload(1_000_000, stores=200, days_retained=100, refreshes_per_hour=1)
    design = estimate(INPUTS, DEPLOYMENT, big, P).design
    ranged = math.ceil(10 * 1_000_000 * 7 / MIB)  # 66.8 MiB -> 67
    everything = math.ceil(1 * 1_000_000 * 100 / MIB)  # 95.4 MiB -> 96
    for view, mib in (("ranged", ranged), ("everything", everything)):
        tb = mib * MIB * 730 / 1024**4
        assert _line(design, "Athena", view).monthly == pytest.approx(tb * 5.00)


def test_batches_fill_with_the_file_rate_up_to_the_batch_size():
    busy = Workload(10_000_000, stores=100, upload_seconds=1)  # 100 logs a second
    derived = estimate(INPUTS, DEPLOYMENT, busy, P).derived
    assert derived["files_per_batch"] == 10
    assert derived["batches_per_day"] == pytest.approx(100 * 86400 / 10)
    assert derived["batch_seconds"] == pytest.approx(0.5 + 0.1 * 10 + 0.001 * 10_000_000 / 864_000)


def test_compaction_follows_the_policy_by_hand():
    day = simulate_compaction(8640, 100, 50, runs=2, small_threshold=1e9, target=1e9, min_files=4)
    assert (day.commits, day.files_rewritten, day.bytes_rewritten) == (
        2,
        COMPACTION_FILES,
        COMPACTION_READ,
    )
    assert day.files_at_end == 1
    # files over the threshold stay; fewer small files than min_files wait for the next run
    grown = simulate_compaction(30, 10, 10, runs=10, small_threshold=25, target=1e9, min_files=4)
    assert grown.commits == 5  # runs 2, 4, 6, 8, 10: 3 new files are too few
    assert grown.files_at_end == 5  # each commit's 60 B file is over 25 B: never read again
    assert grown.bytes_rewritten == 30 * 10


@pytest.mark.parametrize(
    "change",
    [
        {"transactions_per_day": 0},
        {"stores": 0},
        {"days_retained": 0},
        {"refreshes_per_hour": -1},
        {"transactions_per_day": float("nan")},
    ],
)
def test_a_workload_out_of_range_is_a_clear_error(change):
    values = {
        "transactions_per_day": 1000,
        "stores": 5,
        "days_retained": 30,
        "refreshes_per_hour": 12,
    } | change
    with pytest.raises(ValueError, match="must be at least"):
        Workload(**values)


def test_metadata_objects_count_once_each_however_they_were_uploaded():
    from supermarket_cost.model import _objects_written

    requests = {
        "s3 PUT iceberg_metadata CreateMultipartUpload": Linear(2, 0, 0),
        "s3 PUT iceberg_metadata UploadPart": Linear(2, 0, 0),
        "s3 PUT iceberg_metadata CompleteMultipartUpload": Linear(2, 0, 0),
        "s3 PUT iceberg_manifest PutObject": Linear(1, 0.5, 0),
        "s3 PUT data PutObject": Linear(2, 0, 0),  # data files are counted apart
    }
    assert _objects_written(requests, files=2, txns=0) == 2 + 1 + 0.5 * 2
