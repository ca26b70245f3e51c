"""Every endpoint, name, port and rate of the local stack, from an environment variable with a
default; command-line flags override them. Nothing else in the stack reads os.environ."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from simulator import defaults as demo
from supermarket_cli import defaults as names
from supermarket_queries.glue import DEFAULT_DATABASE

LOCAL_REGION = "us-east-1"
LOCAL_CREDENTIAL = "local"  # moto accepts any credentials; these never reach AWS


def _from(variable: str, help: str) -> dict[str, str]:
    """A field's metadata: the environment variable it is read from, and what it is."""
    return {"variable": variable, "help": help}


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path = field(
        default=Path(".state"),
        metadata=_from("SUPERMARKET_STATE", "state folder: logs, Dagster home, lake snapshot"),
    )
    host: str = field(
        default="127.0.0.1", metadata=_from("SUPERMARKET_HOST", "address every local server binds")
    )
    moto_port: int = field(
        default=5000, metadata=_from("SUPERMARKET_MOTO_PORT", "moto server port (0: any free port)")
    )
    dagster_port: int = field(
        default=3000,
        metadata=_from("SUPERMARKET_DAGSTER_PORT", "Dagster UI port (0: any free port)"),
    )
    dashboard_port: int = field(
        default=names.DEFAULT_DASHBOARD_PORT,
        metadata=_from("SUPERMARKET_DASHBOARD_PORT", "dashboard port (0: any free port)"),
    )
    bucket: str = field(
        default=names.DEFAULT_BUCKET, metadata=_from("LAKE_BUCKET", "the lake bucket")
    )
    queue: str = field(
        default=names.DEFAULT_QUEUE,
        metadata=_from("INGEST_QUEUE", "SQS queue fed by raw/incoming/ (and its -dlq)"),
    )
    alert_topic: str = field(
        default=names.DEFAULT_ALERT_TOPIC,
        metadata=_from("ALERT_TOPIC", "SNS topic for freshness alerts"),
    )
    glue_database: str = field(
        default=DEFAULT_DATABASE,
        metadata=_from("GLUE_DATABASE", "Glue database of the four tables"),
    )
    tps: float = field(
        default=demo.DEFAULT_TRANSACTIONS_PER_SECOND,
        metadata=_from("FEED_TPS", "live transactions per second"),
    )
    fps: float = field(
        default=demo.DEFAULT_FILES_PER_SECOND,
        metadata=_from("FEED_FPS", "live log files per second"),
    )
    history_days: int = field(
        default=demo.DEFAULT_DAYS,
        metadata=_from("HISTORY_DAYS", "days of history loaded, ending yesterday (UTC)"),
    )
    history_days_per_run: int = field(
        default=demo.DEFAULT_HISTORY_DAYS_PER_RUN,
        metadata=_from("HISTORY_DAYS_PER_RUN", "most history days in one Dagster run"),
    )
    history_per_day: int = field(
        default=demo.DEFAULT_TRANSACTIONS_PER_DAY,
        metadata=_from("HISTORY_TRANSACTIONS_PER_DAY", "historical transactions a day"),
    )
    stores: int = field(
        default=demo.DEFAULT_STORES,
        metadata=_from("SUPERMARKET_STORES", "stores in the reference data"),
    )
    skus: int = field(
        default=demo.DEFAULT_SKUS, metadata=_from("SUPERMARKET_SKUS", "SKUs in the reference data")
    )
    seed: int = field(
        default=demo.DEFAULT_SEED,
        metadata=_from("SUPERMARKET_SEED", "seed of reference data, history and prices"),
    )
    # None: start moto and point everything at it. A URL: use that endpoint as it is (another
    # moto, LocalStack). "" (with --aws): no endpoint at all, so boto3 reaches real AWS.
    endpoint: str | None = None
    ports_pinned: frozenset[str] = field(default_factory=frozenset)  # set explicitly: no fallback

    @property
    def embedded_aws(self) -> bool:
        return self.endpoint is None

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def dagster_home(self) -> Path:
        return self.state_dir / "dagster_home"

    @property
    def snapshot_dir(self) -> Path:
        return self.state_dir / "s3" / self.bucket

    @property
    def catalog_file(self) -> Path:
        """The kept Iceberg tables' metadata files (moto's Glue is in memory too)."""
        return self.state_dir / "s3" / f"{self.bucket}.catalog.json"

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    def with_overrides(self, **overrides: Any) -> "StackConfig":
        """Flags given on the command line (None means not given)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


# (environment variable, StackConfig field, default, help), from the fields: for the README's
# table and for reading the environment.
VARIABLES: list[tuple[str, str, Any, str]] = [
    (f.metadata["variable"], f.name, f.default, f.metadata["help"])
    for f in fields(StackConfig)
    if "variable" in f.metadata
]


def from_environment(environ: Mapping[str, str] | None = None) -> StackConfig:
    """The stack's settings: each variable of VARIABLES, or its default."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    pinned = set()
    for name, attribute, default, _ in VARIABLES:
        raw = environ.get(name)
        if raw in (None, ""):
            continue
        try:
            numeric = isinstance(default, int | float)
            values[attribute] = type(default)(raw.replace("_", "") if numeric else raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r}: expected a {type(default).__name__}") from None
        if attribute.endswith("_port") and values[attribute] != 0:
            pinned.add(attribute)
    endpoint = environ.get("AWS_ENDPOINT_URL") or None
    return StackConfig(**values, endpoint=endpoint, ports_pinned=frozenset(pinned))


def history_days(config: StackConfig, today: date | None = None) -> list[str]:
    """The history partitions `up` loads: HISTORY_DAYS days ending yesterday (UTC)."""
    today = today or datetime.now(UTC).date()
    return [(today - timedelta(days=n)).isoformat() for n in range(config.history_days, 0, -1)]


def loading_params(config: StackConfig) -> dict[str, Any]:
    """What the loaded data depends on besides its days: a change means loading again."""
    return {
        "bucket": config.bucket,
        "history_per_day": config.history_per_day,
        "stores": config.stores,
        "skus": config.skus,
        "seed": config.seed,
    }
