import json
from datetime import date
from decimal import Decimal

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from lake_contract import layout, schema
from supermarket_dagster.defs.history.assets import history_backfill, raw_history_logs
from supermarket_dagster.defs.reference.assets import skus, supermarkets

DAY = "2026-03-02"


def _table(lake, key):
    return pq.read_table(pa.BufferReader(lake.objects().read(key)))


def _lake_rows(lake, table):
    keys = lake.objects().keys(layout.table_prefix(table))
    return pa.concat_tables([_table(lake, k) for k in keys]) if keys else None


def test_reference_assets_write_their_tables_with_row_counts(lake):
    result = dg.materialize(
        [supermarkets, skus],
        resources={"lake": lake},
        run_config={"ops": {"skus": {"config": {"skus": 700, "seed": 3}}}},
    )

    assert result.success
    assert _table(lake, layout.reference_key("supermarkets")).num_rows == 5
    catalogue = _table(lake, layout.reference_key("skus"))
    assert catalogue.num_rows == 700
    assert catalogue.schema.equals(schema.SKUS.remove_metadata())
    metadata = result.asset_materializations_for_node("skus")[0].metadata
    assert metadata["rows"].value == 700


def test_a_history_day_and_its_backfill_convert_every_logged_transaction(lake):
    config = {"ops": {"raw_history_logs": {"config": {"transactions_per_day": 1200, "skus": 500}}}}
    assert dg.materialize([raw_history_logs], resources={"lake": lake}, partition_key=DAY,
                          run_config=config).success  # fmt: skip
    raw_keys = lake.objects().keys(layout.day_prefix(layout.RAW_HISTORY, date.fromisoformat(DAY)))
    raw = [json.loads(line, parse_float=Decimal)
           for key in raw_keys for line in lake.objects().read(key).splitlines()]  # fmt: skip

    result = dg.materialize([history_backfill], resources={"lake": lake}, partition_key=DAY)

    assert result.success
    transactions = _lake_rows(lake, "transactions")
    items = _lake_rows(lake, "transaction_items")
    assert transactions.num_rows == len(raw) == 1200
    assert items.num_rows == sum(len(r["items"]) for r in raw)
    expected = sum(i["quantity"] * i["unit_price"] for r in raw for i in r["items"])
    assert sum(transactions["total_amount"].to_pylist()) == expected
    materializations = [e.materialization for e in result.get_asset_materialization_events()]
    by_asset = {m.asset_key.to_user_string(): m.metadata for m in materializations}
    assert by_asset["transactions"]["rows"].value == 1200
    assert by_asset["transaction_items"]["rows"].value == items.num_rows


def test_rerunning_a_day_replaces_exactly_that_day(lake):
    config = {"ops": {"raw_history_logs": {"config": {"transactions_per_day": 300, "skus": 200}}}}
    for day in (DAY, "2026-03-03"):
        dg.materialize([raw_history_logs], resources={"lake": lake}, partition_key=day,
                       run_config=config)  # fmt: skip
        dg.materialize([history_backfill], resources={"lake": lake}, partition_key=day)
    before = {k: lake.objects().read(k) for k in lake.objects().keys(layout.LAKE)}

    dg.materialize([history_backfill], resources={"lake": lake}, partition_key=DAY)

    after = lake.objects().keys(layout.LAKE)
    assert sorted(before) == after  # same keys: replaced, not added
    other_day = [k for k in after if "dt=2026-03-03" in k]
    assert other_day and all(lake.objects().read(k) == before[k] for k in other_day)  # untouched
    assert _lake_rows(lake, "transactions").num_rows == 600
