"""Glue table definitions generated from the one schema module, never written by hand.

The fact tables use partition projection on dt, so a partition the Lambda has just written is
queryable at once: no crawler, no MSCK REPAIR, no partition API calls.
"""

import contextlib
from typing import Any

import pyarrow as pa

from lake_contract import layout, schema
from lake_contract.quarantine import QUARANTINE_RECORD, QUARANTINE_TABLE

DEFAULT_DATABASE = "supermarket_lake"
PROJECTION_START = "2020-01-01"

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
    """The Glue TableInput of one lake table stored under s3://bucket/lake/<table>/."""
    location = f"s3://{bucket}/{layout.table_prefix(table)}"
    parameters = {"classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": "ZSTD"}
    partition_keys = []
    if table in schema.PARTITIONED_TABLES:
        dt = schema.PARTITION.name
        partition_keys = [_column(schema.PARTITION)]
        parameters |= {
            "projection.enabled": "true",
            f"projection.{dt}.type": "date",
            f"projection.{dt}.format": "yyyy-MM-dd",
            f"projection.{dt}.range": f"{PROJECTION_START},NOW",
            f"projection.{dt}.interval": "1",
            f"projection.{dt}.interval.unit": "DAYS",
            "storage.location.template": f"{location}{dt}=${{{dt}}}",
        }
    return {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "PartitionKeys": partition_keys,
        "StorageDescriptor": {
            "Columns": [_column(f) for f in schema.TABLES[table]],
            "Location": location,
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
    return [table_input(name, bucket) for name in schema.TABLES] + [quarantine_table_input(bucket)]


def create_catalog(glue: Any, bucket: str, database: str = DEFAULT_DATABASE) -> list[str]:
    """Creates the database and every lake table in Glue (moto locally), or updates them."""
    with contextlib.suppress(glue.exceptions.AlreadyExistsException):
        glue.create_database(DatabaseInput={"Name": database})
    names = []
    for table in table_inputs(bucket):
        try:
            glue.create_table(DatabaseName=database, TableInput=table)
        except glue.exceptions.AlreadyExistsException:
            glue.update_table(DatabaseName=database, TableInput=table)
        names.append(table["Name"])
    return names
