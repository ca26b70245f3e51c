"""Rows written as an Iceberg table's Parquet data files, with the statistics its manifest keeps.

pyiceberg's own writer (_dataframe_to_data_files) copies a table once per partition value even
when, as for nearly every source, all its rows are one day's, and encodes every column as a
dictionary with min/max statistics, unique ids and strings too: in one process, the 10M
backfill's conversion and staging took 42.1 s with it and 33.7 s with this. Here a one-day
batch is written as it is, with the lake's column options (lake_contract.parquet), and keeps
min/max only where a reader prunes by it: times, amounts, numbers, and source_key, whose full
bounds let the committer find a source's files.
Anything else (rows of several days, or more than one file's worth) goes through pyiceberg's.
"""

import dataclasses
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lake_contract.parquet import column_options

# String columns whose min/max the manifest keeps (TABLE_PROPERTIES: full bounds).
BOUNDED_STRINGS = frozenset({"source_key"})


def write_data_files(table: Any, rows: pa.Table) -> list[Any]:
    """The rows written as the table's data files, not yet part of any snapshot."""
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    if not rows.num_rows:
        return []
    metadata = table.metadata
    with_ids = schema_to_pyarrow(metadata.schema(), include_field_ids=True)
    key = _one_partition(metadata, rows)
    if key is None or rows.nbytes > _target_file_bytes(metadata) or not _as_table(with_ids, rows):
        files = _pyiceberg_data_files(table, rows)
    else:
        files = [_data_file(table, rows, key, with_ids)]
    for data_file in files:  # as a manifest would tell it, so a later commit can delete it
        data_file.spec_id = metadata.default_spec_id
    return files


def _pyiceberg_data_files(table: Any, rows: pa.Table) -> list[Any]:
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    return list(_dataframe_to_data_files(
        table_metadata=table.metadata, write_uuid=uuid.uuid4(), df=rows, io=table.io
    ))  # fmt: skip


def _target_file_bytes(metadata: Any) -> int:
    from pyiceberg.table import TableProperties
    from pyiceberg.utils.properties import property_as_int

    return property_as_int(metadata.properties, TableProperties.WRITE_TARGET_FILE_SIZE_BYTES,
                           TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT) or 0  # fmt: skip


def _as_table(wanted: pa.Schema, rows: pa.Table) -> bool:
    """The rows have the table's columns (wanted) in its own types (strings of either width),
    as the committer shapes them: they can be written as they are."""

    def plain(kind: pa.DataType) -> pa.DataType:
        return pa.string() if pa.types.is_large_string(kind) else kind

    have = {f.name: plain(f.type) for f in rows.schema}
    return all(have.get(f.name) == plain(f.type) for f in wanted)


def _one_partition(metadata: Any, rows: pa.Table) -> Any:
    """The partition key of rows that all fall in one partition; None if they do not."""
    import pyarrow.compute as pc
    from pyiceberg.partitioning import PartitionFieldValue, PartitionKey

    spec, schema = metadata.spec(), metadata.schema()
    values = []
    for partition_field in spec.fields:
        source = schema.find_field(partition_field.source_id)
        transform = partition_field.transform.pyarrow_transform(source.field_type)
        column = transform(rows[schema.find_column_name(partition_field.source_id)])
        if column.null_count:
            return None
        bounds = pc.min_max(column)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if low != high:
            return None
        values.append(PartitionFieldValue(field=partition_field, value=low))
    return PartitionKey(field_values=values, partition_spec=spec, schema=schema)


def _data_file(table: Any, rows: pa.Table, partition_key: Any, with_ids: pa.Schema) -> Any:
    """One Parquet data file of rows (all of partition_key), written as pyiceberg's writer
    writes one (with_ids: the table's Arrow schema with its field ids; decimals as integers,
    the table's codec and page sizes)."""
    from pyiceberg.io.pyarrow import (
        _get_parquet_writer_kwargs,
        data_file_statistics_from_parquet_metadata,
        parquet_path_to_id_mapping,
    )
    from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
    from pyiceberg.table import TableProperties
    from pyiceberg.table.locations import load_location_provider
    from pyiceberg.utils.properties import property_as_int

    metadata = table.metadata
    schema, properties = metadata.schema(), metadata.properties
    # The table's columns, with their field ids, in the rows' own types (string, not the
    # large_string pyiceberg reads: Parquet stores both alike, and nothing is cast).
    file_schema = pa.schema([
        pa.field(f.name, rows.schema.field(f.name).type, f.nullable, f.metadata) for f in with_ids
    ])  # fmt: skip
    options = column_options(file_schema, BOUNDED_STRINGS)
    rows = pa.Table.from_arrays(rows.select(file_schema.names).columns, schema=file_schema)
    sink = pa.BufferOutputStream()
    writer = pq.ParquetWriter(sink, file_schema, store_decimal_as_integer=True, **options,
                              **_get_parquet_writer_kwargs(properties))  # fmt: skip
    with writer:
        writer.write_table(rows, row_group_size=property_as_int(
            properties, TableProperties.PARQUET_ROW_GROUP_LIMIT,
            TableProperties.PARQUET_ROW_GROUP_LIMIT_DEFAULT))  # fmt: skip
    content = sink.getvalue()
    name = f"00000-0-{uuid.uuid4()}.parquet"  # as pyiceberg names a task's file
    location = load_location_provider(table_location=metadata.location,
                                      table_properties=properties)  # fmt: skip
    path = location.new_data_location(data_file_name=name, partition_key=partition_key)
    with table.io.new_output(path).create(overwrite=True) as output:
        output.write(content)
    statistics = data_file_statistics_from_parquet_metadata(
        parquet_metadata=writer.writer.metadata,
        stats_columns=_statistics_plan(schema, properties, set(options["write_statistics"])),
        parquet_column_mapping=parquet_path_to_id_mapping(schema),
    )
    return DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition=partition_key.partition,
        file_size_in_bytes=len(content),
        sort_order_id=None,
        spec_id=metadata.default_spec_id,
        equality_ids=None,
        key_metadata=None,
        **statistics.to_serialized_dict(),
    )


def _statistics_plan(schema: Any, properties: Any, with_statistics: set[str]) -> dict[int, Any]:
    """The table's metrics modes, with none for the columns written without Parquet statistics
    (pyiceberg would otherwise warn of each missing one, per row group)."""
    from pyiceberg.io.pyarrow import MetricModeTypes, MetricsMode, compute_statistics_plan

    none = MetricsMode(MetricModeTypes.NONE)
    return {
        field_id: collector if collector.column_name in with_statistics
        else dataclasses.replace(collector, mode=none)
        for field_id, collector in compute_statistics_plan(schema, properties).items()
    }  # fmt: skip
