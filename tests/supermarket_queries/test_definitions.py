import boto3
import pytest
import sqlglot
from moto import mock_aws

from lake_contract import schema
from lake_contract.quarantine import QUARANTINE_RECORD, QUARANTINE_TABLE
from supermarket_queries import glue, views
from supermarket_queries.athena import create_view_statements


def test_glue_tables_are_generated_from_the_schema_module():
    for table in glue.table_inputs("lake-bucket"):
        fields = {**schema.TABLES, QUARANTINE_TABLE: QUARANTINE_RECORD}[table["Name"]]
        columns = table["StorageDescriptor"]["Columns"]
        assert [c["Name"] for c in columns] == fields.names
        assert [c["Type"] for c in columns] == [glue.hive_type(f.type) for f in fields]
        assert all(c["Comment"] for c in columns)
        folder = "quarantine/" if table["Name"] == QUARANTINE_TABLE else f"lake/{table['Name']}/"
        assert table["StorageDescriptor"]["Location"] == f"s3://lake-bucket/{folder}"


def test_the_quarantine_table_reads_the_ndjson_records():
    (table,) = [t for t in glue.table_inputs("b") if t["Name"] == QUARANTINE_TABLE]
    storage = table["StorageDescriptor"]

    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    assert storage["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    assert table["PartitionKeys"] == []


def test_money_and_time_types_are_what_athena_reads():
    (transactions,) = [t for t in glue.table_inputs("b") if t["Name"] == "transactions"]
    types = {c["Name"]: c["Type"] for c in transactions["StorageDescriptor"]["Columns"]}
    assert types["total_amount"] == "decimal(12,2)"
    assert types["transaction_datetime"] == "timestamp"


@pytest.mark.parametrize("table", sorted(schema.PARTITIONED_TABLES))
def test_fact_tables_project_dt_so_new_partitions_need_no_crawler(table):
    definition = glue.table_input(table, "lake-bucket")
    parameters = definition["Parameters"]

    assert definition["PartitionKeys"] == [{"Name": "dt", "Type": "date", "Comment": ""}]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.dt.type"] == "date"
    assert parameters["projection.dt.format"] == "yyyy-MM-dd"
    assert parameters["projection.dt.range"].endswith(",NOW")
    assert parameters["storage.location.template"] == f"s3://lake-bucket/lake/{table}/dt=${{dt}}"


def test_reference_tables_are_not_partitioned():
    for name in ("supermarkets", "skus"):
        definition = glue.table_input(name, "b")
        assert definition["PartitionKeys"] == []
        assert "projection.enabled" not in definition["Parameters"]


@mock_aws
def test_the_catalog_is_created_in_glue_and_can_be_created_again(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("glue")

    tables = [*schema.TABLES, QUARANTINE_TABLE]
    assert glue.create_catalog(client, "lake-bucket") == tables
    assert glue.create_catalog(client, "lake-bucket") == tables

    stored = client.get_table(DatabaseName=glue.DEFAULT_DATABASE, Name="transactions")["Table"]
    assert stored["Parameters"]["projection.enabled"] == "true"
    assert [c["Name"] for c in stored["StorageDescriptor"]["Columns"]] == schema.TRANSACTIONS.names


@pytest.mark.parametrize("name", views.view_names())
def test_every_view_is_valid_athena_sql_and_transpiles(name):
    sqlglot.parse_one(views.athena_sql(name), read="athena")  # raises on a local-only construct
    assert isinstance(sqlglot.parse_one(views.duckdb_sql(name), read="duckdb"), sqlglot.exp.Select)


def test_the_views_are_the_curated_ones():
    assert set(views.view_names()) == {
        "daily_sales_by_store", "top_skus", "hourly_sales", "basket_size",
        "payment_method_mix", "freshness",
        # the dashboard's, for any store filter, and its quarantine panel
        "store_hourly_sales", "store_basket_size", "store_top_skus", "quarantine_reasons",
    }  # fmt: skip


def test_athena_view_statements_parse_as_athena():
    statements = create_view_statements()

    assert len(statements) == len(views.view_names())
    for statement in statements:
        assert sqlglot.parse_one(statement, read="athena") is not None


def test_an_unknown_view_names_the_known_ones():
    with pytest.raises(views.UnknownView, match="the views are: basket_size"):
        views.athena_sql("sales")
