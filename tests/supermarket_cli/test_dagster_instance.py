import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.run_coordinator import QueuedRunCoordinator

from supermarket_cli.dagster_instance import (
    REPO_ROOT,
    daemon_command,
    webserver_command,
    write_instance_config,
)


@pytest.mark.slow  # `dagster instance migrate` runs as a process: a few seconds
def test_the_written_instance_queues_runs_at_most_n_at_a_time_in_subprocesses(tmp_path):
    home = tmp_path / "dagster_home"

    write_instance_config(home, max_concurrent_runs=3)

    # The storage exists before any server starts, so two servers never race to create it.
    assert (home / "storage" / "history" / "runs.db").exists()
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 3
        assert isinstance(instance.run_launcher, DefaultRunLauncher)
        assert instance.root_directory == str(home.resolve())
        assert not instance.get_settings("telemetry")["enabled"]
        daemons = set(instance.get_required_daemon_types())
    assert {"BACKFILL", "QUEUED_RUN_COORDINATOR", "SENSOR", "ASSET", "FRESHNESS_DAEMON"} <= daemons


def test_no_concurrent_runs_at_all_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        write_instance_config(tmp_path, max_concurrent_runs=0)


def test_the_servers_run_from_this_venv_on_the_repository_workspace():
    venv_bin = Path(sys.executable).parent
    assert webserver_command("127.0.0.1", 3001) == [
        str(venv_bin / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", "3001"
    ]  # fmt: skip
    assert daemon_command() == [str(venv_bin / "dagster-daemon"), "run", "-w", "workspace.yaml"]
    assert (REPO_ROOT / "workspace.yaml").exists()
    assert (venv_bin / "dagster-webserver").exists() and (venv_bin / "dagster-daemon").exists()
