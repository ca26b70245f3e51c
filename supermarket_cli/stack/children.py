"""The stack's processes: what each runs, with which environment, and how it shows it is ready."""

import sys
from pathlib import Path

from supermarket_cli.stack.config import StackConfig
from supermarket_cli.stack.processes import ChildFailed, ChildSpec, http_ok

REPO_ROOT = Path(__file__).resolve().parent.parent.parent

# Stop order on Ctrl-C: the feed first (it finishes the file in hand), the Lambda runtime once
# the queue is drained, then the rest; moto last, after the lake is saved.
STOP_ORDER = ["payment-processor", "lambda-runtime", "dashboard", "dagster-daemon",
              "dagster-webserver", "moto"]  # fmt: skip


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "supermarket_cli.main", *args]


def moto(config: StackConfig, port: int, env: dict[str, str]) -> ChildSpec:
    url = f"http://{config.host}:{port}"
    return ChildSpec(
        name="moto",
        argv=[sys.executable, "-m", "moto.server", "-H", config.host, "-p", str(port)],
        env=env,
        ready=lambda: http_ok(f"{url}/moto-api/"),
        port=port,
    )


def lambda_runtime(queue_url: str, env: dict[str, str]) -> ChildSpec:
    return ChildSpec("lambda-runtime", _cli("lambda-runtime", "--queue-url", queue_url), env)


def payment_processor(config: StackConfig, env: dict[str, str]) -> ChildSpec:
    argv = _cli(
        "payment-processor",
        "--out", f"s3://{config.bucket}",
        "--tps", str(config.tps),
        "--fps", str(config.fps),
        "--seed", str(config.seed),
        "--stores", str(config.stores),
        "--skus", str(config.skus),
    )  # fmt: skip
    return ChildSpec("payment-processor", argv, env)


def dagster_webserver(config: StackConfig, port: int, env: dict[str, str]) -> ChildSpec:
    from supermarket_cli.dagster_instance import webserver_command

    url = f"http://{config.host}:{port}"
    return ChildSpec(
        name="dagster-webserver",
        argv=webserver_command(config.host, port),
        env=env,
        ready=lambda: http_ok(f"{url}/server_info"),
        stop_timeout=20.0,
        port=port,
        cwd=REPO_ROOT,
    )


def code_location_loaded(url: str) -> bool:
    """Ready means the UI lists the assets, not just that the server answers."""
    from supermarket_cli.dagster_graphql import DagsterGraphQL, DagsterGraphQLError

    if not http_ok(f"{url}/server_info"):
        return False
    try:
        DagsterGraphQL(url, request_timeout=10).wait_ready(timeout=0)
    except DagsterGraphQLError as exc:
        if "failed to load" in str(exc):
            raise ChildFailed(str(exc)) from None
        return False
    return True


def dagster_daemon(env: dict[str, str]) -> ChildSpec:
    from supermarket_cli.dagster_instance import daemon_command

    return ChildSpec("dagster-daemon", daemon_command(), env, stop_timeout=15.0, cwd=REPO_ROOT)


def dashboard(config: StackConfig, port: int, env: dict[str, str]) -> ChildSpec:
    """The dashboard on the stack's lake, through the same endpoint as everything else."""
    url = f"http://{config.host}:{port}"
    argv = _cli("dashboard", "--lake", f"s3://{config.bucket}", "--host", config.host,
                "--port", str(port))  # fmt: skip
    return ChildSpec(
        name="dashboard",
        argv=argv,
        env=env,
        ready=lambda: http_ok(f"{url}/_stcore/health"),
        port=port,
        cwd=REPO_ROOT,
    )
