"""The production Dagster profile (PostgresStorage, EcsRunLauncher, S3 compute logs) against a
real PostgreSQL server and moto: `dagster instance migrate` creates the schema, a run is
recorded, and it is read back from Postgres itself."""

import os
import subprocess
import sys
from pathlib import Path

import boto3
import dagster as dg
import psycopg2
import pytest

from supermarket_cli.dagster_instance import (
    PRODUCTION_ENVIRONMENT,
    RUN_CONTAINER,
    write_production_config,
)
from tests.moto_server import running_moto
from tests.supermarket_infra.postgres_server import running_postgres

RUN_FAMILY = "supermarket-dagster-run"
DATABASE = "dagster"


@dg.op
def count_stores() -> int:
    return 5


@dg.job
def stores_job():
    count_stores()


@pytest.fixture
def production(tmp_path, monkeypatch):
    """DAGSTER_HOME with the production dagster.yaml, and every variable it reads pointing at
    a Postgres server and a moto server of this test's own."""
    with running_postgres() as postgres, running_moto(monkeypatch):
        postgres.create_database(DATABASE)
        boto3.client("s3").create_bucket(Bucket="supermarket-lake")
        # The launcher checks its task definition and container when the instance loads.
        boto3.client("ecs").register_task_definition(
            family=RUN_FAMILY,
            containerDefinitions=[{"name": RUN_CONTAINER, "image": "supermarket:1", "memory": 512}],
        )
        home = tmp_path / "dagster_home"
        write_production_config(home)
        environment = {
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": postgres.host,
            "DAGSTER_PG_PORT": str(postgres.port),
            "DAGSTER_PG_DB": DATABASE,
            "DAGSTER_PG_USERNAME": postgres.user,
            "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_RUN_TASK_DEFINITION": RUN_FAMILY,
            "DAGSTER_COMPUTE_LOG_BUCKET": "supermarket-lake",
            "DAGSTER_LOCAL_DIR": str(tmp_path / "local"),
        }
        assert set(environment) - {"DAGSTER_HOME"} == set(PRODUCTION_ENVIRONMENT)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        yield postgres, home


def test_the_production_instance_migrates_records_a_run_and_reads_it_back(production):
    postgres, home = production

    # When the deployed image would: migrate the schema with the dagster CLI
    migrate = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "instance", "migrate"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert migrate.returncode == 0, migrate.stderr[-2000:]

    # Then the instance is the production one
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_launcher).__name__ == "EcsRunLauncher"
        assert instance.run_launcher.task_definition.endswith(f"task-definition/{RUN_FAMILY}:1")
        assert instance.run_launcher.container_name == RUN_CONTAINER

        # When a run executes on it, then it is recorded with its events
        result = stores_job.execute_in_process(instance=instance)
        assert result.success
        stored = instance.get_run_by_id(result.run_id)
        assert stored.status == dg.DagsterRunStatus.SUCCESS
        events = instance.all_logs(result.run_id)
        assert any(e.dagster_event and e.dagster_event.is_successful_output for e in events)

    # And Postgres itself holds the run and its events
    with (
        psycopg2.connect(
            host=postgres.host, port=postgres.port, user=postgres.user, dbname=DATABASE
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT status FROM runs WHERE run_id = %s", (result.run_id,))
        assert cursor.fetchall() == [("SUCCESS",)]
        cursor.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (result.run_id,))
        assert cursor.fetchone()[0] == len(events)
        cursor.execute("SELECT count(*) FROM alembic_version")
        assert cursor.fetchone()[0] == 1
