"""Glue table definitions generated from the one schema module, never written by hand.

The fact tables and the rollup are Iceberg tables, defined by pyiceberg from the same schema
(lake_contract.tables): Athena reads their current snapshot from the catalog, so a commit is
queryable at once, with no crawler, no partition projection and no MSCK REPAIR. Here are the
plain ones: each reference table (one Parquet object) and the quarantine records (NDJSON).
"""

import contextlib
from typing import Any

import pyarrow as pa

from lake_contract import layout, schema, tables
from lake_contract.quarantine import QUARANTINE_RECORD, QUARANTINE_TABLE

DEFAULT_DATABASE = tables.DEFAULT_DATABASE
REFERENCE_TABLES = tuple(t for t in schema.TABLES if t not in tables.ICEBERG_TABLES)

_PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    },
}


def hive_type(type_: pa.DataType) -> str:
    """The Hive/Athena type of an Arrow type used by the lake's tables."""
    if pa.types.is_string(type_):
        return "string"
    if pa.types.is_int32(type_):
        return "int"
    if pa.types.is_int64(type_):
        return "bigint"
    if pa.types.is_decimal(type_):
        return f"decimal({type_.precision},{type_.scale})"
    if pa.types.is_timestamp(type_):
        return "timestamp"
    if pa.types.is_date32(type_):
        return "date"
    raise TypeError(f"no Hive type for {type_}")


def _column(field: pa.Field) -> dict[str, str]:
    comment = (field.metadata or {}).get(b"description", b"").decode()
    return {"Name": field.name, "Type": hive_type(field.type), "Comment": comment}


def table_input(table: str, bucket: str) -> dict[str, Any]:
    """The Glue TableInput of a reference table: one Parquet object under lake/<table>/."""
    if table not in REFERENCE_TABLES:
        raise ValueError(f"{table} is an Iceberg table: pyiceberg defines it (tables.py)")
    return {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "classification": "parquet",
            "EXTERNAL": "TRUE",
            "parquet.compression": "ZSTD",
        },
        "PartitionKeys": [],
        "StorageDescriptor": {
            "Columns": [_column(f) for f in schema.TABLES[table]],
            "Location": f"s3://{bucket}/{layout.table_prefix(table)}",
            **_PARQUET,
        },
    }


_JSON_LINES = {
    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"},
}


def quarantine_table_input(bucket: str) -> dict[str, Any]:
    """The Glue TableInput over every quarantine/<source>.ndjson: one row per rejected record."""
    location = f"s3://{bucket}/{layout.QUARANTINE}"
    return {
        "Name": QUARANTINE_TABLE,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "json", "EXTERNAL": "TRUE"},
        "PartitionKeys": [],
        "StorageDescriptor": {
            "Columns": [_column(f) for f in QUARANTINE_RECORD],
            "Location": location,
            **_JSON_LINES,
        },
    }


def table_inputs(bucket: str) -> list[dict[str, Any]]:
    """The Glue definitions written here: the reference tables and quarantine (the Iceberg
    tables' definitions are pyiceberg's, kept by its commits)."""
    return [table_input(name, bucket) for name in REFERENCE_TABLES] + [
        quarantine_table_input(bucket)
    ]


def create_catalog(glue: Any, bucket: str, database: str = DEFAULT_DATABASE) -> list[str]:
    """Creates the database and every lake table in Glue (moto locally): the Iceberg tables
    through pyiceberg, left as they are when they exist; the others created or updated."""
    with contextlib.suppress(glue.exceptions.AlreadyExistsException):
        glue.create_database(DatabaseInput={"Name": database})
    names = tables.create_tables(tables.glue_catalog(), f"s3://{bucket}", database)
    for table in table_inputs(bucket):
        try:
            glue.create_table(DatabaseName=database, TableInput=table)
        except glue.exceptions.AlreadyExistsException:
            glue.update_table(DatabaseName=database, TableInput=table)
        names.append(table["Name"])
    return names
