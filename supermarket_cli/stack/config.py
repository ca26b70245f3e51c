"""Every endpoint, name, port and rate of the local stack, from an environment variable with a
default; command-line flags override them. Nothing else in the stack reads os.environ."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from supermarket_cli.local_aws import DEFAULT_ALERT_TOPIC, DEFAULT_QUEUE

LOCAL_REGION = "us-east-1"
LOCAL_CREDENTIAL = "local"  # moto accepts any credentials; these never reach AWS

# (environment variable, StackConfig field, default, help) for the README's table and `--help`.
VARIABLES: list[tuple[str, str, Any, str]] = [
    ("SUPERMARKET_STATE", "state_dir", ".state", "state folder: logs, Dagster home, lake snapshot"),
    ("SUPERMARKET_HOST", "host", "127.0.0.1", "address every local server binds"),
    ("SUPERMARKET_MOTO_PORT", "moto_port", 5000, "moto server port (0: any free port)"),
    ("SUPERMARKET_DAGSTER_PORT", "dagster_port", 3000, "Dagster UI port (0: any free port)"),
    ("SUPERMARKET_DASHBOARD_PORT", "dashboard_port", 8050, "dashboard port (0: any free port)"),
    ("LAKE_BUCKET", "bucket", "supermarket-lake", "the lake bucket"),
    ("INGEST_QUEUE", "queue", DEFAULT_QUEUE, "SQS queue fed by raw/incoming/ (and its -dlq)"),
    ("ALERT_TOPIC", "alert_topic", DEFAULT_ALERT_TOPIC, "SNS topic for freshness alerts"),
    ("GLUE_DATABASE", "glue_database", "supermarket_lake", "Glue database of the four tables"),
    ("FEED_TPS", "tps", 50.0, "live transactions per second"),
    ("FEED_FPS", "fps", 2.0, "live log files per second"),
    ("HISTORY_DAYS", "history_days", 30, "days of history loaded, ending yesterday (UTC)"),
    ("HISTORY_TRANSACTIONS_PER_DAY", "history_per_day", 3_334, "historical transactions a day"),
    ("SUPERMARKET_STORES", "stores", 5, "stores in the reference data"),
    ("SUPERMARKET_SKUS", "skus", 12_000, "SKUs in the reference data"),
    ("SUPERMARKET_SEED", "seed", 0, "seed of reference data, history and prices"),
]


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path = Path(".state")
    host: str = "127.0.0.1"
    moto_port: int = 5000
    dagster_port: int = 3000
    dashboard_port: int = 8050
    bucket: str = "supermarket-lake"
    queue: str = DEFAULT_QUEUE
    alert_topic: str = "supermarket-alerts"
    glue_database: str = "supermarket_lake"
    tps: float = 50.0
    fps: float = 2.0
    history_days: int = 30
    history_per_day: int = 3_334
    stores: int = 5
    skus: int = 12_000
    seed: int = 0
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
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    def with_overrides(self, **overrides: Any) -> "StackConfig":
        """Flags given on the command line (None means not given)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


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
    if "state_dir" in values:
        values["state_dir"] = Path(values["state_dir"])
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
