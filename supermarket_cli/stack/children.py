"""The stack's processes: what each runs, with which environment, and how it shows it is ready.
The Dagster code server, webserver and daemon are specified beside their instance, in
dagster_instance."""

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from supermarket_cli.processes import ChildSpec, Supervisor, free_port, http_ok, port_is_free
from supermarket_cli.stack.config import StackConfig
from supermarket_dashboard.settings import DEFAULT_REFRESH_SECONDS

# Stop order on Ctrl-C: the feed first (it finishes the file in hand), the Lambda runtime once
# the queue is drained, then the rest; moto last, after the lake is saved.
STOP_ORDER = ["payment-processor", "lambda-runtime", "dashboard", "dagster-daemon",
              "dagster-webserver", "dagster-code-server", "moto"]  # fmt: skip


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "supermarket_cli.main", *args]


def moto(host: str, port: int, env: Mapping[str, str]) -> ChildSpec:
    url = f"http://{host}:{port}"
    return ChildSpec(
        name="moto",
        argv=[sys.executable, "-m", "supermarket_cli.moto_server", "-H", host, "-p", str(port)],
        env=dict(env),
        ready=lambda: http_ok(f"{url}/moto-api/"),
        address=(host, port),
    )


@contextmanager
def moto_server(host: str = "127.0.0.1") -> Iterator[str]:
    """moto server as the stack runs it, on a free port, for tests and benchmarks: its own
    process (others, e.g. Dagster's, can reach it), stopped on exit. Yields the endpoint."""
    port = free_port(host)
    with Supervisor(None) as supervisor:
        supervisor.start(moto(host, port, os.environ))
        yield f"http://{host}:{port}"


def lambda_runtime(queue_url: str, env: Mapping[str, str]) -> ChildSpec:
    return ChildSpec("lambda-runtime", _cli("lambda-runtime", "--queue-url", queue_url), dict(env))


def payment_processor(config: StackConfig, env: Mapping[str, str]) -> ChildSpec:
    argv = _cli(
        "payment-processor",
        "--out", f"s3://{config.bucket}",
        "--tps", str(config.tps),
        "--fps", str(config.fps),
        "--seed", str(config.seed),
        "--stores", str(config.stores),
        "--skus", str(config.skus),
    )  # fmt: skip
    return ChildSpec("payment-processor", argv, dict(env))


def dashboard(
    lake: str,
    host: str,
    port: int,
    env: Mapping[str, str],
    refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
) -> ChildSpec:
    """The dashboard on a lake (the stack's: s3://bucket, through the stack's endpoint)."""
    url = f"http://{host}:{port}"
    argv = _cli("dashboard", "--lake", lake, "--host", host, "--port", str(port),
                "--refresh-seconds", str(refresh_seconds))  # fmt: skip
    return ChildSpec(
        name="dashboard",
        argv=argv,
        env=dict(env),
        ready=lambda: http_ok(f"{url}/_stcore/health"),
        address=(host, port),
    )


def fault_proxy(
    upstream: str, host: str, port: int, env: Mapping[str, str], rate: float
) -> ChildSpec:
    """The fault-injecting S3 proxy (supermarket_cli/faults.py) in front of upstream, for a
    soak: point AWS_ENDPOINT_URL_S3 at http://host:port. Ready once it listens."""
    argv = _cli("fault-proxy", "--upstream", upstream, "--host", host, "--port", str(port),
                "--rate", str(rate))  # fmt: skip
    return ChildSpec(
        name="fault-proxy",
        argv=argv,
        env=dict(env),
        ready=lambda: not port_is_free(host, port),
        address=(host, port),
    )
