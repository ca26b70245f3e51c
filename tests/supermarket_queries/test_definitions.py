import boto3
import pytest
import sqlglot

from lake_contract import schema, tables
from lake_contract.quarantine import QUARANTINE_RECORD, QUARANTINE_TABLE
from supermarket_queries import glue, views
from supermarket_queries.athena import create_view_statements
from tests.moto_server import running_moto


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


def test_reference_tables_are_not_partitioned_and_iceberg_tables_are_not_here():
    assert {t["Name"] for t in glue.table_inputs("b")} == {"supermarkets", "skus", "quarantine"}
    for name in ("supermarkets", "skus"):
        definition = glue.table_input(name, "b")
        assert definition["PartitionKeys"] == []
        assert "projection.enabled" not in definition["Parameters"]
    with pytest.raises(ValueError, match="Iceberg"):
        glue.table_input("transactions", "b")


def test_the_catalog_is_created_in_glue_and_can_be_created_again(monkeypatch):
    with running_moto(monkeypatch):
        boto3.client("s3").create_bucket(Bucket="lake-bucket")
        client = boto3.client("glue")
        names = [*tables.ICEBERG_TABLES, "supermarkets", "skus", QUARANTINE_TABLE]

        assert glue.create_catalog(client, "lake-bucket") == names
        assert glue.create_catalog(client, "lake-bucket") == names

        stored = client.get_table(DatabaseName=glue.DEFAULT_DATABASE, Name="transactions")
        assert stored["Table"]["Parameters"]["table_type"] == "ICEBERG"
        skus = client.get_table(DatabaseName=glue.DEFAULT_DATABASE, Name="skus")["Table"]
        assert [c["Name"] for c in skus["StorageDescriptor"]["Columns"]] == schema.SKUS.names


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
