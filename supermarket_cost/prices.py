"""AWS on-demand prices, us-east-1, in US dollars: the one table the cost model reads.

Written from AWS's public price pages as last read (no network here to re-read them); the date
says when the table was written. A JSON file of {"field": number} overrides any of them
(`supermarket cost --prices FILE`); rds_instance_hour takes {"class": number}.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "us-east-1"
PRICES_DATE = "2026-12-02"
GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class Prices:
    region: str = REGION
    date: str = PRICES_DATE
    # Lambda, arm64 (the template's architecture)
    lambda_per_million_requests: float = 0.20
    lambda_per_gb_second_arm64: float = 0.0000133334
    # SQS standard queue, per million requests (each 64 KB chunk counts as one)
    sqs_per_million_requests: float = 0.40
    # SNS: publishes, and email deliveries (the on-call subscription)
    sns_per_million_publishes: float = 0.50
    sns_per_100k_email: float = 2.00
    # S3 Standard
    s3_put_per_1000: float = 0.005  # PUT, COPY, POST, LIST
    s3_get_per_1000: float = 0.0004  # GET, HEAD and the rest
    s3_storage_gb_month: float = 0.023  # first 50 TB
    # Glue Data Catalog: the first million requests and objects a month are free
    glue_per_million_requests: float = 1.00
    glue_free_requests: float = 1_000_000
    glue_per_100k_objects_month: float = 1.00
    glue_free_objects: float = 1_000_000
    glue_dpu_hour: float = 0.44  # ETL jobs, billed per second with a 1-minute minimum
    glue_job_minimum_seconds: float = 60.0
    # Athena (SQL queries): per TB scanned, rounded up to the MB, 10 MB minimum per query
    athena_per_tb_scanned: float = 5.00
    athena_minimum_mb_per_query: float = 10.0
    # Fargate, Linux/arm64
    fargate_vcpu_hour_arm64: float = 0.03238
    fargate_gb_hour_arm64: float = 0.00356
    fargate_minimum_seconds: float = 60.0
    # RDS for PostgreSQL, single-AZ hourly (Multi-AZ is twice), gp3 storage
    rds_instance_hour: dict[str, float] = field(
        default_factory=lambda: {
            "db.t4g.micro": 0.016,
            "db.t4g.small": 0.032,
            "db.t4g.medium": 0.065,
            "db.t4g.large": 0.129,
        }
    )
    rds_gp3_gb_month: float = 0.115  # single-AZ; Multi-AZ is twice
    # Data Firehose, Direct PUT: each record billed in 5 KB increments
    firehose_ingest_gb: float = 0.029
    firehose_record_increment_kb: float = 5.0
    firehose_format_conversion_gb: float = 0.018
    # CloudWatch, X-Ray, KMS, Secrets Manager
    cloudwatch_alarm_month: float = 0.10
    cloudwatch_logs_ingest_gb: float = 0.50
    cloudwatch_logs_storage_gb_month: float = 0.03
    xray_per_million_traces: float = 5.00
    kms_key_month: float = 1.00
    secrets_manager_secret_month: float = 0.40

    def rds_hour(self, instance_class: str) -> float:
        if instance_class not in self.rds_instance_hour:
            raise ValueError(
                f"no price for the database class {instance_class!r}: add it to the prices "
                f'file as {{"rds_instance_hour": {{"{instance_class}": DOLLARS_AN_HOUR}}}}'
            )
        return self.rds_instance_hour[instance_class]


DEFAULT_PRICES = Prices()


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"price {name!r} must be a number >= 0, got {value!r}")
    return float(value)


def with_overrides(prices: Prices, overrides: dict[str, Any]) -> Prices:
    """The prices with some replaced; an unknown name or a value that is not a number is an
    error naming it."""
    known = {f.name: f for f in dataclasses.fields(Prices)}
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in known:
            raise ValueError(f"unknown price {name!r}; known: {', '.join(sorted(known))}")
        if name in ("region", "date"):
            if not isinstance(value, str):
                raise ValueError(f"{name!r} must be a string, got {value!r}")
            changes[name] = value
        elif name == "rds_instance_hour":
            if not isinstance(value, dict):
                raise ValueError(f"'rds_instance_hour' must map a class to a price, got {value!r}")
            changes[name] = prices.rds_instance_hour | {
                str(k): _number(f"rds_instance_hour.{k}", v) for k, v in value.items()
            }
        else:
            changes[name] = _number(name, value)
    return dataclasses.replace(prices, **changes)


def load_prices(path: Path | None) -> Prices:
    """The table in code, overridden by the JSON file at `path` when given."""
    if path is None:
        return DEFAULT_PRICES
    try:
        overrides = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"{path}: expected a JSON object of price names to numbers")
    return with_overrides(DEFAULT_PRICES, overrides)
