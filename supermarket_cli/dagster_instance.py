"""A project-local Dagster instance: its dagster.yaml, and the code server, webserver and
daemon processes.

Nothing here imports Dagster: the instance is a YAML file and the servers are subprocesses
of the venv's own `dagster code-server`, `dagster-webserver` and `dagster-daemon`, run from the
repository root. One code server loads `supermarket_dagster.definitions` and starts the runs;
the webserver and the daemon both reach it through DAGSTER_HOME/workspace.yaml. `supermarket
up`, the tests and the benchmarks all start them with `start_dagster`, as children of the
process layer.
"""

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lake_contract.pandas_free import WITHOUT_PANDAS_VARIABLE
from supermarket_cli.processes import (
    ChildFailed,
    ChildSpec,
    Supervisor,
    accepts_connections,
    free_port,
    http_ok,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = "workspace.yaml"  # the repository's, for `dagster dev`; the stack writes its own
DEFINITIONS_MODULE = "supermarket_dagster.definitions"
LOCATION = DEFINITIONS_MODULE  # the name workspace.yaml's python_module gives the location
EVENT_LOG_MODULE = "supermarket_dagster.event_log_storage"
MIGRATED_STAMP = ".migrated-by-dagster"  # in DAGSTER_HOME/storage: the Dagster version it is at
# Dagster's processes and the runs they start (compaction, checks, rollups) are background work
# beside the live path (moto, the Lambda runtime, readers), which they would otherwise slow down.
BACKGROUND_NICE = 10


def instance_config(dagster_home: Path, max_concurrent_runs: int = 2) -> dict:
    """The dagster.yaml contents, as a mapping (written as JSON, which is YAML)."""
    storage = dagster_home / "storage"
    shared = _shared_settings(max_concurrent_runs)
    # One backfill run at a time on this machine: two large runs on its two cores finish no
    # sooner than one after the other, and hold twice the memory. A history backfill's rollup
    # (sales automation, a backfill of its own) otherwise starts while the backfill's last days
    # are still being checked. The ECS profile keeps running backfill runs side by side.
    shared["concurrency"]["runs"]["tag_concurrency_limits"] = [
        {"key": "dagster/backfill", "limit": 1}
    ]
    return {
        # Dagster's sqlite storage (`storage: sqlite`'s very layout under storage/), with an
        # event log that keeps its connections: an event costs a fifth (event_log_storage.py).
        "run_storage": _storage(
            "dagster._core.storage.runs", "SqliteRunStorage", storage / "history"
        ),
        "event_log_storage": _storage(
            EVENT_LOG_MODULE, "PooledSqliteEventLogStorage", storage / "history" / "runs"
        ),
        "schedule_storage": _storage(
            "dagster._core.storage.schedules", "SqliteScheduleStorage", storage / "schedules"
        ),
        "local_artifact_storage": {
            "module": "dagster._core.storage.root",
            "class": "LocalArtifactStorage",
            "config": {"base_dir": str(dagster_home)},
        },
        "compute_logs": {
            "module": "dagster._core.storage.local_compute_log_manager",
            "class": "LocalComputeLogManager",
            "config": {"base_dir": str(dagster_home / "logs")},
        },
        # One subprocess per run, started by the code server.
        "run_launcher": {"module": "dagster", "class": "DefaultRunLauncher"},
        **shared,
    }


def _storage(module: str, name: str, base_dir: Path) -> dict:
    return {"module": module, "class": name, "config": {"base_dir": str(base_dir)}}


def _shared_settings(max_concurrent_runs: int) -> dict:
    """What the local and the production instance share: the queue, the daemons, run
    monitoring, telemetry off."""
    return {
        # The queue is the QueuedRunCoordinator; polled each second so a run starts promptly.
        "run_queue": {"dequeue_interval_seconds": 1},
        "concurrency": {"runs": {"max_concurrent_runs": max_concurrent_runs}},
        # A run whose worker never starts (e.g. killed on a busy machine) is failed, not stuck.
        "run_monitoring": {
            "enabled": True,
            "start_timeout_seconds": 300,
            "poll_interval_seconds": 30,
        },
        "run_retries": {"enabled": False},
        # Declarative automation (AutomationCondition) runs as the default automation sensor.
        # Its interval is set, not left to default: the local daemon shortens the default, which
        # is meant for the backfill loop only (supermarket_cli.dagster_daemon).
        "auto_materialize": {"enabled": True, "use_sensors": True, "minimum_interval_seconds": 30},
        # The freshness daemon evaluates FreshnessPolicy.time_window on assets.
        "freshness": {"enabled": True},
        "sensors": {"use_threads": True, "num_workers": 2},
        "backfills": {"use_threads": True, "num_workers": 2},
        # Loading the code location on a busy 2-core machine can take far longer than usual.
        "code_servers": {"local_startup_timeout": 300},
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
    }


def write_instance_config(
    dagster_home: Path, max_concurrent_runs: int = 2, migrate_storage: bool = True
) -> None:
    """Write DAGSTER_HOME/dagster.yaml: sqlite storage under it, a queue running at most
    max_concurrent_runs runs at once, a subprocess per run, telemetry off. With migrate_storage,
    also bring a kept storage to this Dagster version (migrate_kept_storage)."""
    if max_concurrent_runs < 1:
        raise ValueError(f"max_concurrent_runs must be at least 1, got {max_concurrent_runs}")
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = instance_config(dagster_home.resolve(), max_concurrent_runs)
    (dagster_home / "dagster.yaml").write_text(json.dumps(config, indent=2) + "\n")
    if migrate_storage:
        migrate_kept_storage(dagster_home)


def _dagster_version() -> str:
    return importlib.metadata.version("dagster")


def _stamp(storage: Path) -> None:
    """The storage is at this Dagster version (no migrate until the version changes)."""
    (storage / MIGRATED_STAMP).write_text(_dagster_version())


def migrate_kept_storage(dagster_home: Path) -> bool:
    """`dagster instance migrate` on a kept storage not yet at this Dagster version (it takes
    seconds of imports, so it runs once per version, then the storage is stamped); True if it
    ran. Two processes creating a fresh storage at once corrupt its schema version table ("more
    than one head"). A fresh home needs no migrate for that: start_dagster starts the code server
    alone, and its gRPC server opens the instance, creating the storage, before it loads the
    definitions and listens (dagster 1.13); the webserver and the daemon start after that."""
    storage = dagster_home / "storage"
    stamp = storage / MIGRATED_STAMP
    if not storage.is_dir() or (stamp.is_file() and stamp.read_text() == _dagster_version()):
        return False
    result = subprocess.run(
        [_venv_bin("dagster"), "instance", "migrate"],
        env={**os.environ, "DAGSTER_HOME": str(dagster_home.resolve())},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise RuntimeError(
            f"could not migrate the Dagster storage in {dagster_home}: "
            + (lines[-1] if lines else f"exit code {result.returncode}")
        )
    _stamp(storage)
    return True


def _venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def code_server_command(host: str, port: int) -> list[str]:
    """argv of the one code server the webserver and the daemon share (and which starts the
    runs): the definitions are loaded once, not once by each of them. `code-server start` keeps
    the UI's "Reload definitions" working."""
    return [_venv_bin("dagster"), "code-server", "start", "-m", DEFINITIONS_MODULE,
            "--location-name", LOCATION, "-h", host, "-p", str(port)]  # fmt: skip


def write_workspace(dagster_home: Path, host: str, code_port: int) -> Path:
    """DAGSTER_HOME/workspace.yaml: the shared code server, under the location name the
    repository's workspace.yaml gives the same module (run URLs and selectors stay the same)."""
    path = dagster_home / "workspace.yaml"
    location = {"host": host, "port": code_port, "location_name": LOCATION}
    path.write_text(json.dumps({"load_from": [{"grpc_server": location}]}, indent=2) + "\n")
    return path


def webserver_command(host: str, port: int, workspace: str = WORKSPACE) -> list[str]:
    """argv of the webserver; run it with cwd=REPO_ROOT and DAGSTER_HOME set."""
    return [_venv_bin("dagster-webserver"), "-w", workspace, "-h", host, "-p", str(port)]


def daemon_command(workspace: str = WORKSPACE) -> list[str]:
    """argv of the daemon (run queue, backfills, sensors, automation, freshness): Dagster's own,
    with its backfill loop polled every few seconds, not 30 (supermarket_cli.dagster_daemon)."""
    return [sys.executable, "-m", "supermarket_cli.dagster_daemon", "run", "-w", workspace]


def code_server_spec(host: str, port: int, env: Mapping[str, str]) -> ChildSpec:
    """The code server as a child; it listens only once the definitions have loaded. The runs
    are its subprocesses, so they stop with it (and survive a daemon's restart)."""
    return ChildSpec(
        name="dagster-code-server",
        argv=code_server_command(host, port),
        env=dict(env),
        ready=lambda: accepts_connections(host, port),
        stop_timeout=20.0,
        address=(host, port),
        cwd=REPO_ROOT,
        nice=BACKGROUND_NICE,
    )


def webserver_spec(
    host: str, port: int, env: Mapping[str, str], workspace: str = WORKSPACE
) -> ChildSpec:
    """The webserver as a child; ready once it answers HTTP (its code location may still load)."""
    url = f"http://{host}:{port}"
    return ChildSpec(
        name="dagster-webserver",
        argv=webserver_command(host, port, workspace),
        env=dict(env),
        ready=lambda: http_ok(f"{url}/server_info"),
        stop_timeout=20.0,
        address=(host, port),
        cwd=REPO_ROOT,
        nice=BACKGROUND_NICE,
    )


def daemon_spec(env: Mapping[str, str], workspace: str = WORKSPACE) -> ChildSpec:
    return ChildSpec(
        "dagster-daemon",
        daemon_command(workspace),
        dict(env),
        stop_timeout=15.0,
        cwd=REPO_ROOT,
        nice=BACKGROUND_NICE,
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


def dagster_environment(env: Mapping[str, str], dagster_home: Path) -> dict[str, str]:
    """env as every Dagster process and run gets it: with its DAGSTER_HOME, and pandas left
    out, as `up` runs them (no Dagster process uses it; lake_contract.pandas_free)."""
    return {**env, "DAGSTER_HOME": str(dagster_home.resolve()), WITHOUT_PANDAS_VARIABLE: "1"}


def start_dagster(
    supervisor: Supervisor,
    dagster_home: Path,
    host: str,
    port: int,
    env: Mapping[str, str],
    timeout: float = 180.0,
) -> str:
    """Starts the code server, then the webserver and the daemon together, on this instance
    (written beforehand by write_instance_config) as children of supervisor; returns the UI's
    URL once the code location has loaded. env is the whole environment (LAKE_BUCKET,
    AWS_ENDPOINT_URL, ...), completed by dagster_environment."""
    env = dagster_environment(env, dagster_home)
    url = f"http://{host}:{port}"
    code_port = free_port(host)
    workspace = str(write_workspace(dagster_home, host, code_port))
    # The code server first: a webserver or daemon that finds it unreachable takes seconds to
    # notice it came up. Then both at once (the daemon used to wait for the webserver).
    storage = dagster_home / "storage"
    fresh = not storage.is_dir()
    supervisor.start(code_server_spec(host, code_port, env), ready_timeout=timeout)
    if fresh:  # the code server has just created it, alone, at this version
        if not storage.is_dir():
            raise ChildFailed(f"the code server did not create the Dagster storage {storage}")
        _stamp(storage)
    supervisor.start(daemon_spec(env, workspace))
    supervisor.start(webserver_spec(host, port, env, workspace), ready_timeout=timeout)
    supervisor.wait_ready("dagster-webserver", lambda: code_location_loaded(url), timeout)
    return url


@dataclass(frozen=True)
class DagsterServers:
    url: str
    webserver: subprocess.Popen
    daemon: subprocess.Popen
    code_server: subprocess.Popen  # and the runs: they are its subprocesses


@contextmanager
def running_dagster(
    dagster_home: Path,
    port: int,
    env: Mapping[str, str],
    host: str = "127.0.0.1",
    log_dir: Path | None = None,
) -> Iterator[DagsterServers]:
    """The code server, webserver and daemon, started as `supermarket up` starts them and
    stopped on exit by the same stop policy. Output goes to
    log_dir/dagster-{code-server,webserver,daemon}.log, or is discarded."""
    with Supervisor(log_dir) as supervisor:
        url = start_dagster(supervisor, dagster_home, host, port, env)
        children = supervisor.children
        webserver, daemon, code_server = (
            children["dagster-webserver"].process,
            children["dagster-daemon"].process,
            children["dagster-code-server"].process,
        )
        assert webserver is not None and daemon is not None and code_server is not None
        yield DagsterServers(url=url, webserver=webserver, daemon=daemon, code_server=code_server)


# The production instance (ECS in AWS): Postgres storage (RDS) and one ECS task per run. Every
# value comes from the environment, which the template's Dagster task definitions set; the
# local instance above is unchanged.
PRODUCTION_ENVIRONMENT = {
    "DAGSTER_PG_HOST": "Postgres host (the RDS endpoint)",
    "DAGSTER_PG_PORT": "Postgres port",
    "DAGSTER_PG_DB": "Postgres database",
    "DAGSTER_PG_USERNAME": "Postgres user",
    "DAGSTER_PG_PASSWORD": "Postgres password (an ECS secret from RDS's managed secret)",
    "DAGSTER_RUN_TASK_DEFINITION": "the ECS task definition the EcsRunLauncher runs",
    "DAGSTER_COMPUTE_LOG_BUCKET": "bucket of the runs' stdout and stderr, under dagster/",
    "DAGSTER_LOCAL_DIR": "a writable folder for Dagster's local files",
}
RUN_CONTAINER = "run"  # the container the EcsRunLauncher overrides in that task definition
COMPUTE_LOG_PREFIX = "dagster/compute-logs"


def _env(name: str) -> dict[str, str]:
    assert name in PRODUCTION_ENVIRONMENT, name
    return {"env": name}


def production_instance_config(max_concurrent_runs: int = 10) -> dict:
    """The production dagster.yaml: PostgresStorage from DAGSTER_PG_*, the EcsRunLauncher on
    DAGSTER_RUN_TASK_DEFINITION (cluster and networking of the daemon's own task), S3 compute
    logs, and the same daemons as locally."""
    shared = _shared_settings(max_concurrent_runs)
    return {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "hostname": _env("DAGSTER_PG_HOST"),
                    "port": _env("DAGSTER_PG_PORT"),
                    "db_name": _env("DAGSTER_PG_DB"),
                    "username": _env("DAGSTER_PG_USERNAME"),
                    "password": _env("DAGSTER_PG_PASSWORD"),
                    # SQLAlchemy 2.1 reads plain "postgresql" as psycopg 3; dagster-postgres
                    # brings psycopg2.
                    "scheme": "postgresql+psycopg2",
                }
            }
        },
        "local_artifact_storage": {
            "module": "dagster._core.storage.root",
            "class": "LocalArtifactStorage",
            "config": {"base_dir": _env("DAGSTER_LOCAL_DIR")},
        },
        "compute_logs": {
            "module": "dagster_aws.s3.compute_log_manager",
            "class": "S3ComputeLogManager",
            "config": {
                "bucket": _env("DAGSTER_COMPUTE_LOG_BUCKET"),
                "prefix": COMPUTE_LOG_PREFIX,
                "local_dir": _env("DAGSTER_LOCAL_DIR"),
                "upload_extra_args": {"ServerSideEncryption": "aws:kms"},
            },
        },
        "run_launcher": {
            "module": "dagster_aws.ecs",
            "class": "EcsRunLauncher",
            "config": {
                "task_definition": _env("DAGSTER_RUN_TASK_DEFINITION"),
                "container_name": RUN_CONTAINER,
                # The run's task gets the daemon's cluster, subnets and security groups.
                "use_current_ecs_task_config": True,
                # Secrets come with the task definition; no ListSecrets on "*" to find tagged ones.
                "secrets_tag": None,
            },
        },
        **shared,
        # Runs may wait longer on Fargate capacity than a local subprocess takes to start.
        "run_monitoring": {**shared["run_monitoring"], "start_timeout_seconds": 600},
    }


def write_production_config(dagster_home: Path) -> Path:
    """Writes DAGSTER_HOME/dagster.yaml for production; the image carries it."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / "dagster.yaml"
    path.write_text(json.dumps(production_instance_config(), indent=2) + "\n")
    return path
