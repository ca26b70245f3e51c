import json
from datetime import date
from decimal import Decimal

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake_contract import layout, schema
from supermarket_dagster.defs.history.assets import history_backfill, raw_history_logs
from supermarket_dagster.defs.reference.assets import skus, supermarkets
from tests.moto_server import table_rows

DAY = "2026-03-02"


def _table(lake, key):
    return pq.read_table(pa.BufferReader(lake.objects().read(key)))


def _lake_rows(lake, table):
    return table_rows(table)


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
    before = _lake_rows(lake, "transactions")

    dg.materialize([history_backfill], resources={"lake": lake}, partition_key=DAY)

    after = _lake_rows(lake, "transactions")
    assert after.num_rows == 600  # replaced, not added
    assert sorted(after["transaction_id"].to_pylist()) == sorted(
        before["transaction_id"].to_pylist()
    )
    other_day = after.filter(pc.equal(after["dt"], date(2026, 3, 3)))
    before_other = before.filter(pc.equal(before["dt"], date(2026, 3, 3)))
    assert other_day.num_rows == 300 and other_day.sort_by("transaction_id").equals(
        before_other.sort_by("transaction_id")
    )  # untouched, to the ingested_at
    rerun = after.filter(pc.equal(after["dt"], date.fromisoformat(DAY)))
    assert pc.min(rerun["ingested_at"]).as_py() > pc.max(before_other["ingested_at"]).as_py()


def test_a_day_with_no_raw_logs_is_a_failed_run_naming_the_prefix(lake):
    result = dg.materialize([history_backfill], resources={"lake": lake}, partition_key=DAY,
                            raise_on_error=False)  # fmt: skip

    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert f"raw/history/dt={DAY}/" in failure.step_failure_data.error.message
