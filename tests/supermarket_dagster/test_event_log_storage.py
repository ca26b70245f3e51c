"""The local instance's event log keeps its connections: runs and their events are stored and read
back as with Dagster's own sqlite storage, in the same files, with a bounded number of engines."""

import dagster as dg
import pytest

from supermarket_cli.dagster_instance import write_instance_config
from supermarket_dagster import event_log_storage
from supermarket_dagster.event_log_storage import PooledSqliteEventLogStorage


@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["a", "b"]))
def counted(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"partition": context.partition_key})


@dg.asset_check(asset=counted)
def counted_is_fine() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@pytest.fixture
def dagster_home(tmp_path):
    home = tmp_path / "home"
    write_instance_config(home, migrate_storage=False)
    return home


def test_runs_and_their_events_read_back_across_instances_with_engines_bounded(
    dagster_home, monkeypatch
):
    monkeypatch.setattr(event_log_storage, "ENGINES_KEPT", 3)
    runs = []
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, PooledSqliteEventLogStorage)
        for n in range(5):  # more run databases than engines kept
            result = dg.materialize(
                [counted, counted_is_fine], instance=instance, partition_key="ab"[n % 2]
            )
            assert result.success
            runs.append(result.run_id)
            assert len(storage._engines) <= 3
        # A run whose engine was let go is opened again.
        last = instance.all_logs(runs[0])[-1].dagster_event
        assert last.event_type == dg.DagsterEventType.RUN_SUCCESS

    # A new instance, as another process opens the same home: the same runs, events, records.
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert {r.run_id for r in instance.get_runs()} == set(runs)
        latest = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=counted.key, asset_partitions=["a"]), limit=10
        ).records
        assert [r.run_id for r in latest] == [runs[4], runs[2], runs[0]]
        checks = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(counted.key, "counted_is_fine"), limit=10
        )
        assert len(checks) == 5
        # Dagster's own layout: `storage: sqlite`'s files, so a kept storage opens as before.
        storage = dagster_home / "storage"
        assert (storage / "history" / "runs.db").is_file()
        assert {p.stem for p in (storage / "history" / "runs").glob("*.db")} == {*runs, "index"}
        assert (storage / "schedules" / "schedules.db").is_file()

        instance.wipe()  # no connection is kept to the files it deletes
        assert instance.get_runs() == []
        assert not list((storage / "history" / "runs").glob(f"{runs[0]}.db"))
