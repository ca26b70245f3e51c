"""The tables of the lake: the one definition every writer, DDL and query engine derives from.

Money is decimal, never float. Timestamps are UTC at millisecond precision, because Athena
reads Parquet timestamps in milliseconds and mis-reads nanoseconds.
"""

import pyarrow as pa

MONEY_UNIT = pa.decimal128(10, 2)
MONEY_TOTAL = pa.decimal128(12, 2)
MONEY_ROLLUP = pa.decimal128(18, 2)
UTC_MILLIS = pa.timestamp("ms", tz="UTC")


def _field(name: str, type_: pa.DataType, description: str) -> pa.Field:
    return pa.field(name, type_, nullable=False, metadata={"description": description})


_LINEAGE = [
    _field("source_key", pa.string(), "key of the raw log this row came from"),
    _field("ingested_at", UTC_MILLIS, "when the row was converted from its raw log (UTC)"),
]

SUPERMARKETS = pa.schema(
    [
        _field("store_id", pa.string(), "store identifier, e.g. STORE0003"),
        _field("store_name", pa.string(), "display name of the store"),
        _field("store_location", pa.string(), "city and state of the store"),
    ]
)

SKUS = pa.schema(
    [
        _field("sku_id", pa.string(), "stock keeping unit identifier, e.g. SKU07067"),
        _field("product_name", pa.string(), "display name of the product"),
        _field("category", pa.string(), "product category"),
        _field("price", MONEY_UNIT, "current shelf price"),
    ]
)

TRANSACTIONS = pa.schema(
    [
        _field("transaction_id", pa.string(), "globally unique transaction identifier"),
        _field("store_id", pa.string(), "store where the sale happened"),
        _field("transaction_datetime", UTC_MILLIS, "when the sale happened (UTC)"),
        _field("payment_method", pa.string(), "how the basket was paid"),
        _field("total_amount", MONEY_TOTAL, "sum of quantity x unit_price over the items"),
        *_LINEAGE,
    ]
)

TRANSACTION_ITEMS = pa.schema(
    [
        _field("transaction_id", pa.string(), "the transaction this line belongs to"),
        # The basket's store on each of its lines, as a star schema's fact line carries its
        # store: per-store views group the lines alone, with no join to their transactions
        # (the join was 0.7 s of a 0.73 s view on an open day of 4.5M lines).
        _field("store_id", pa.string(), "store where the basket was sold (its transaction's)"),
        _field("line_number", pa.int32(), "position of the line in its basket, from 1"),
        _field("sku_id", pa.string(), "product sold"),
        _field("quantity", pa.int32(), "units sold, positive"),
        _field("unit_price", MONEY_UNIT, "price of one unit at the time of sale"),
        *_LINEAGE,
    ]
)

# A rollup written by Dagster from transaction_items, one file per day, so that top_skus reads
# ~12,000 pre-summed and pre-ranked rows a day instead of every line. Ranks are within the day,
# so a day's file holds all they depend on. `lines` is what the view checks it against.
SKU_DAILY_SALES = pa.schema(
    [
        _field("sku_id", pa.string(), "product sold"),
        _field("units", pa.int64(), "units sold that day: the sum of quantity"),
        _field("revenue", MONEY_ROLLUP, "sum of quantity x unit_price that day"),
        _field("revenue_rank", pa.int64(), "rank within the day by revenue, 1 first; ties share"),
        _field("units_rank", pa.int64(), "rank within the day by units, 1 first; ties share"),
        _field("lines", pa.int64(), "transaction_items rows summed into this row"),
        _field("rolled_up_at", UTC_MILLIS, "when the rollup read transaction_items (UTC)"),
    ]
)

# The day's baskets per store, UTC hour and payment method, summed by Dagster from the
# transactions ingested before `summed_through` (a few minutes ago, as the open day's
# compaction runs), so the store views sum only the lines ingested since instead of the day.
STORE_HOURLY_TOTALS = pa.schema(
    [
        _field("store_id", pa.string(), "store where the sales happened"),
        _field("hour", UTC_MILLIS, "the UTC hour of the sales, truncated"),
        _field("payment_method", pa.string(), "how the baskets were paid"),
        _field("transactions", pa.int64(), "baskets summed into this row"),
        _field("revenue", MONEY_ROLLUP, "sum of their total_amount"),
        _field("summed_through", UTC_MILLIS, "the day's rows ingested before this time, only"),
        _field("rolled_up_at", UTC_MILLIS, "when the rollup read transactions (UTC)"),
    ]
)

# The day's lines per store and SKU, summed by Dagster from the transaction_items ingested
# before `summed_through`, as STORE_HOURLY_TOTALS is: read by store_top_skus.
STORE_SKU_TOTALS = pa.schema(
    [
        _field("store_id", pa.string(), "store where the lines were sold"),
        _field("sku_id", pa.string(), "product sold"),
        _field("units", pa.int64(), "units sold: the sum of quantity"),
        _field("revenue", MONEY_ROLLUP, "sum of quantity x unit_price"),
        _field("lines", pa.int64(), "transaction_items rows summed into this row"),
        _field("summed_through", UTC_MILLIS, "the day's rows ingested before this time, only"),
        _field("rolled_up_at", UTC_MILLIS, "when the rollup read transaction_items (UTC)"),
    ]
)

# Fact tables are Hive-partitioned by the UTC date of transaction_datetime: lake/<table>/dt=.../
PARTITION = pa.field("dt", pa.date32(), nullable=False, metadata={"format": "yyyy-MM-dd"})

TABLES: dict[str, pa.Schema] = {
    "supermarkets": SUPERMARKETS,
    "skus": SKUS,
    "transactions": TRANSACTIONS,
    "transaction_items": TRANSACTION_ITEMS,
    "sku_daily_sales": SKU_DAILY_SALES,
    "store_hourly_totals": STORE_HOURLY_TOTALS,
    "store_sku_totals": STORE_SKU_TOTALS,
}
# Written by the Lambda and the backfill, one file per source log per day.
INGESTED_TABLES: frozenset[str] = frozenset({"transactions", "transaction_items"})
ROLLUP_TABLES: frozenset[str] = frozenset(
    {"sku_daily_sales", "store_hourly_totals", "store_sku_totals"}
)
PARTITIONED_TABLES: frozenset[str] = INGESTED_TABLES | ROLLUP_TABLES
