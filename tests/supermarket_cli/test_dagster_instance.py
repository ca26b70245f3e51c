import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.run_coordinator import QueuedRunCoordinator

from lake_contract.pandas_free import WITHOUT_PANDAS_VARIABLE
from supermarket_cli.dagster_instance import (
    LOCATION,
    MIGRATED_STAMP,
    REPO_ROOT,
    code_server_command,
    daemon_command,
    dagster_environment,
    migrate_kept_storage,
    webserver_command,
    write_instance_config,
    write_workspace,
)


@pytest.mark.slow  # `dagster instance migrate` runs as a process: a few seconds
def test_the_written_instance_queues_runs_at_most_n_at_a_time_in_subprocesses(tmp_path):
    home = tmp_path / "dagster_home"

    write_instance_config(home, max_concurrent_runs=3)

    # A fresh home: no storage yet (the code server, started alone, creates it), so no migrate.
    assert not (home / "storage").exists()
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 3
        # One backfill run at a time here (the rollup's backfill waits for the history's run).
        assert queue.tag_concurrency_limits == [{"key": "dagster/backfill", "limit": 1}]
        assert isinstance(instance.run_launcher, DefaultRunLauncher)
        assert instance.root_directory == str(home.resolve())
        assert not instance.get_settings("telemetry")["enabled"]
        daemons = set(instance.get_required_daemon_types())
    assert {"BACKFILL", "QUEUED_RUN_COORDINATOR", "SENSOR", "ASSET", "FRESHNESS_DAEMON"} <= daemons

    # That instance made a storage, which nothing stamped: a kept one is migrated, once per
    # Dagster version.
    stamp = home / "storage" / MIGRATED_STAMP
    assert migrate_kept_storage(home) and stamp.read_text() == version("dagster")
    assert not migrate_kept_storage(home)
    stamp.write_text("1.0.0")  # migrated by an older Dagster
    assert migrate_kept_storage(home) and stamp.read_text() == version("dagster")
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_runs() == []  # the migrated storage opens


def test_no_concurrent_runs_at_all_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        write_instance_config(tmp_path, max_concurrent_runs=0)


def test_the_servers_run_from_this_venv_on_the_repository_workspace():
    venv_bin = Path(sys.executable).parent
    assert webserver_command("127.0.0.1", 3001) == [
        str(venv_bin / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", "3001"
    ]  # fmt: skip
    assert daemon_command() == [
        sys.executable, "-m", "supermarket_cli.dagster_daemon", "run", "-w", "workspace.yaml"
    ]  # fmt: skip
    assert (REPO_ROOT / "workspace.yaml").exists()
    assert (venv_bin / "dagster-webserver").exists()


def test_the_webserver_and_the_daemon_share_one_code_server_under_the_repository_location_name(
    tmp_path,
):
    venv_bin = Path(sys.executable).parent
    argv = code_server_command("127.0.0.1", 4010)
    assert argv[:3] == [str(venv_bin / "dagster"), "code-server", "start"]
    assert argv[argv.index("-m") + 1] == "supermarket_dagster.definitions"
    assert argv[argv.index("-p") + 1] == "4010" and argv[argv.index("-h") + 1] == "127.0.0.1"

    workspace = yaml.safe_load(write_workspace(tmp_path, "127.0.0.1", 4010).read_text())

    assert workspace == {"load_from": [{"grpc_server": {
        "host": "127.0.0.1", "port": 4010, "location_name": LOCATION}}]}  # fmt: skip
    # The repository's workspace.yaml (for `dagster dev`) names the location the same way.
    repository = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())
    assert repository == {"load_from": [{"python_module": LOCATION}]}


def test_backfill_runs_go_one_at_a_time_locally_and_side_by_side_on_ecs(tmp_path):
    from supermarket_cli.dagster_instance import instance_config, production_instance_config

    local = instance_config(tmp_path)["concurrency"]["runs"]
    cloud = production_instance_config()["concurrency"]["runs"]
    assert local["tag_concurrency_limits"] == [{"key": "dagster/backfill", "limit": 1}]
    assert "tag_concurrency_limits" not in cloud  # each range of days its own ECS task, at once


def test_every_dagster_process_gets_its_home_and_goes_without_pandas(tmp_path):
    given = {"LAKE_BUCKET": "lake", "DAGSTER_HOME": "/elsewhere"}

    env = dagster_environment(given, tmp_path / "home")

    assert env["LAKE_BUCKET"] == "lake"
    assert env["DAGSTER_HOME"] == str((tmp_path / "home").resolve())
    assert env[WITHOUT_PANDAS_VARIABLE] == "1"
    assert given == {"LAKE_BUCKET": "lake", "DAGSTER_HOME": "/elsewhere"}  # not changed
