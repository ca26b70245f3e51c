"""A project-local Dagster instance: its dagster.yaml, and the webserver and daemon processes.

Nothing here imports Dagster: the instance is a YAML file and the servers are subprocesses
of the venv's own `dagster-webserver` and `dagster-daemon`, run from the repository root so
that `workspace.yaml` loads `supermarket_dagster.definitions`.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = "workspace.yaml"


def instance_config(dagster_home: Path, max_concurrent_runs: int = 2) -> dict:
    """The dagster.yaml contents, as a mapping (written as JSON, which is YAML)."""
    return {
        "storage": {"sqlite": {"base_dir": str(dagster_home / "storage")}},
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
        # The queue is the QueuedRunCoordinator; polled each second so a run starts promptly.
        "run_queue": {"dequeue_interval_seconds": 1},
        "concurrency": {"runs": {"max_concurrent_runs": max_concurrent_runs}},
        # One subprocess per run, started by the code server.
        "run_launcher": {"module": "dagster", "class": "DefaultRunLauncher"},
        # A run whose worker never starts (e.g. killed on a busy machine) is failed, not stuck.
        "run_monitoring": {
            "enabled": True,
            "start_timeout_seconds": 300,
            "poll_interval_seconds": 30,
        },
        "run_retries": {"enabled": False},
        # Declarative automation (AutomationCondition) runs as the default automation sensor.
        "auto_materialize": {"enabled": True, "use_sensors": True},
        # The freshness daemon evaluates FreshnessPolicy.time_window on assets.
        "freshness": {"enabled": True},
        "sensors": {"use_threads": True, "num_workers": 2},
        "backfills": {"use_threads": True, "num_workers": 2},
        # Loading the code location on a busy 2-core machine can take far longer than usual.
        "code_servers": {"local_startup_timeout": 300},
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
    }


def write_instance_config(dagster_home: Path, max_concurrent_runs: int = 2) -> None:
    """Write DAGSTER_HOME/dagster.yaml: sqlite storage under it, a queue running at most
    max_concurrent_runs runs at once, a subprocess per run, telemetry off."""
    if max_concurrent_runs < 1:
        raise ValueError(f"max_concurrent_runs must be at least 1, got {max_concurrent_runs}")
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = instance_config(dagster_home.resolve(), max_concurrent_runs)
    (dagster_home / "dagster.yaml").write_text(json.dumps(config, indent=2) + "\n")


def _venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def webserver_command(host: str, port: int) -> list[str]:
    """argv of the webserver; run it with cwd=REPO_ROOT and DAGSTER_HOME set."""
    return [_venv_bin("dagster-webserver"), "-w", WORKSPACE, "-h", host, "-p", str(port)]


def daemon_command() -> list[str]:
    """argv of the daemon (run queue, backfills, sensors, automation, freshness)."""
    return [_venv_bin("dagster-daemon"), "run", "-w", WORKSPACE]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process_group(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the process's whole group (its code servers and run workers too), wait up to
    timeout for all of it to exit, then SIGKILL what is left. The process must have been
    started in its own session (start_new_session=True)."""
    pgid = process.pid
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    # Children (code server, run workers) may outlive the leader: wait for them too.
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    process.wait()


@dataclass(frozen=True)
class DagsterServers:
    url: str
    webserver: subprocess.Popen
    daemon: subprocess.Popen


@contextmanager
def running_dagster(
    dagster_home: Path,
    port: int,
    env: Mapping[str, str],
    host: str = "127.0.0.1",
    log_dir: Path | None = None,
) -> Iterator[DagsterServers]:
    """The webserver and the daemon on this instance, each in its own process group, stopped
    on exit. env is the whole environment (LAKE_BUCKET, AWS_ENDPOINT_URL, ...); DAGSTER_HOME
    is added. Output goes to log_dir/{webserver,daemon}.log, or is discarded."""
    full_env = {**env, "DAGSTER_HOME": str(dagster_home.resolve())}
    started: list[subprocess.Popen] = []

    def start(name: str, argv: list[str]) -> subprocess.Popen:
        out = open(log_dir / f"{name}.log", "wb") if log_dir else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if log_dir:
                out.close()
        started.append(process)
        return process

    try:
        webserver = start("webserver", webserver_command(host, port))
        daemon = start("daemon", daemon_command())
        yield DagsterServers(url=f"http://{host}:{port}", webserver=webserver, daemon=daemon)
    finally:
        for process in reversed(started):
            stop_process_group(process)
        deadline = time.monotonic() + 10
        while not port_is_free(port, host) and time.monotonic() < deadline:
            time.sleep(0.1)
