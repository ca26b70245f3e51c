"""The custom resource that creates the Iceberg tables on deploy, against a moto server: the
tables come out as lake_contract.tables defines them, a second deploy changes nothing, a
stack delete keeps them, and a failure is answered (CloudFormation would wait an hour)."""

import boto3

from lake_contract import tables
from lake_contract.s3 import LakeBucket
from lambda_ingest.table_setup import on_deploy
from tests.cloudformation_response import custom_resource_event, response_url
from tests.moto_server import running_moto

BUCKET = "supermarket-lake-setup"
DATABASE = "lake_from_the_template"


def _metadata_locations() -> dict[str, str]:
    glue = boto3.client("glue")
    return {
        t["Name"]: t["Parameters"]["metadata_location"]
        for t in glue.get_tables(DatabaseName=DATABASE)["TableList"]
    }


def test_create_makes_the_tables_as_defined_and_update_and_delete_keep_them(monkeypatch):
    with running_moto(monkeypatch), response_url() as (url, answers):
        LakeBucket(BUCKET).create()
        boto3.client("glue").create_database(DatabaseInput={"Name": DATABASE})  # the template's

        on_deploy(custom_resource_event("Create", url, Bucket=BUCKET, Database=DATABASE), None)
        created = _metadata_locations()
        catalog = tables.glue_catalog()
        for name in tables.ICEBERG_TABLES:
            table = catalog.load_table((DATABASE, name))
            assert table.schema() == tables.iceberg_schema(name)
            assert table.spec() == tables.partition_spec(name, table.schema())
            assert table.location() == tables.table_location(f"s3://{BUCKET}", name)
            assert table.properties["write.parquet.compression-codec"] == "zstd"

        on_deploy(custom_resource_event("Update", url, Bucket=BUCKET, Database=DATABASE), None)
        on_deploy(custom_resource_event("Delete", url, Bucket=BUCKET, Database=DATABASE), None)
        kept = _metadata_locations()

    assert set(created) == set(tables.ICEBERG_TABLES)
    assert kept == created  # nothing rewritten by the second deploy, nothing dropped
    assert [a["Status"] for a in answers] == ["SUCCESS"] * 3
    assert {a["PhysicalResourceId"] for a in answers} == {f"{DATABASE}/iceberg-tables"}
    assert [a["RequestId"] for a in answers] == [
        "request-create",
        "request-update",
        "request-delete",
    ]
    assert "transactions" in answers[0]["Reason"]


def test_a_failure_is_answered_with_its_reason(monkeypatch):
    with running_moto(monkeypatch), response_url() as (url, answers):
        # No database: the template's LakeDatabase is missing, so Glue refuses the tables.
        LakeBucket(BUCKET).create()
        on_deploy(custom_resource_event("Create", url, Bucket=BUCKET, Database="absent"), None)
        on_deploy(custom_resource_event("Create", url, Database=DATABASE), None)  # no Bucket

    assert [a["Status"] for a in answers] == ["FAILED", "FAILED"]
    assert "absent" in answers[0]["Reason"]
    assert "Bucket" in answers[1]["Reason"]
