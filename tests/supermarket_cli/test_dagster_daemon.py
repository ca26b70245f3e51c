"""The local daemon's backfill loop: Dagster's own loop, sleeping our interval, not its 30 s."""

import logging
import subprocess
import sys
from types import SimpleNamespace

import pytest
from dagster import DagsterInstance
from dagster._daemon import controller
from dagster._daemon.asset_daemon import AssetDaemon
from dagster._daemon.backfill import execute_backfill_iteration_loop

from supermarket_cli.dagster_daemon import BACKFILL_LOOP_SECONDS, configure_backfill_loop
from supermarket_cli.dagster_instance import REPO_ROOT, daemon_command, write_instance_config


class _RecordedShutdown:
    """The loop's shutdown event: records how long the loop asks to sleep, never set."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return False


def _first_sleep(instance: DagsterInstance) -> float:
    shutdown = _RecordedShutdown()
    loop = execute_backfill_iteration_loop(
        SimpleNamespace(instance=instance), logging.getLogger("test"), shutdown
    )
    for _ in loop:
        if shutdown.waits:
            break
    return shutdown.waits[0]


@pytest.fixture
def daemon_interval(monkeypatch):
    """Restores Dagster's constant after the test (configure_backfill_loop sets it process-wide)."""
    monkeypatch.setattr(
        controller, "DEFAULT_DAEMON_INTERVAL_SECONDS", controller.DEFAULT_DAEMON_INTERVAL_SECONDS
    )


def test_dagsters_backfill_loop_sleeps_the_configured_interval_not_30_seconds(daemon_interval):
    with DagsterInstance.ephemeral() as instance:
        # Dagster's own loop, one idle iteration (no backfill requested): it sleeps 30 s less the
        # iteration's time.
        assert 25 < _first_sleep(instance) <= 30
        configure_backfill_loop()
        assert 0 < _first_sleep(instance) <= BACKFILL_LOOP_SECONDS < 5


def test_a_non_positive_interval_is_refused(daemon_interval):
    with pytest.raises(ValueError, match="must be positive, got 0"):
        configure_backfill_loop(0)
    assert controller.DEFAULT_DAEMON_INTERVAL_SECONDS == 30


def test_the_asset_daemon_keeps_its_30_seconds_on_the_written_instance(tmp_path, daemon_interval):
    """The constant is also the asset daemon's default; the instance names its interval."""
    home = tmp_path / "dagster_home"
    write_instance_config(home, migrate_storage=False)
    configure_backfill_loop()
    with DagsterInstance.from_config(str(home)) as instance:
        daemon = controller.create_daemon_of_type(AssetDaemon.daemon_type(), instance)
        assert daemon._pre_sensor_interval_seconds == 30


def test_the_daemon_command_is_dagster_daemons_own_cli():
    result = subprocess.run(
        [*daemon_command()[:3], "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout and "liveness-check" in result.stdout
    assert daemon_command()[0] == sys.executable
