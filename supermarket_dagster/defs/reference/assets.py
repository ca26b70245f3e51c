"""The reference tables: stores and SKUs from the simulator, as Parquet in the lake."""

import dagster as dg
import pyarrow as pa

from lake_contract import layout
from lake_contract.parquet import parquet_bytes
from simulator.defaults import DEFAULT_SEED, DEFAULT_SKUS, DEFAULT_STORES
from simulator.reference import generate_skus, generate_supermarkets
from supermarket_dagster.resources import LakeResource


class ReferenceConfig(dg.Config):
    stores: int = DEFAULT_STORES
    skus: int = DEFAULT_SKUS
    seed: int = DEFAULT_SEED  # history and the live feed must use the same seed for prices to match


def _write(lake: LakeResource, table_name: str, table: pa.Table) -> dg.MaterializeResult:
    key = layout.reference_key(table_name)
    lake.objects().write(key, parquet_bytes(table))
    return dg.MaterializeResult(
        metadata={"rows": table.num_rows, "key": key, "bucket": lake.bucket}
    )


@dg.asset(group_name="reference", kinds={"s3", "parquet"})
def supermarkets(config: ReferenceConfig, lake: LakeResource) -> dg.MaterializeResult:
    """The chain's stores: id, name and location."""
    return _write(lake, "supermarkets", generate_supermarkets(config.stores, config.seed))


@dg.asset(group_name="reference", kinds={"s3", "parquet"})
def skus(config: ReferenceConfig, lake: LakeResource) -> dg.MaterializeResult:
    """The catalogue: id, product name, category and shelf price."""
    return _write(lake, "skus", generate_skus(config.skus, config.seed))
