"""The store totals rollup on a moto server: it sums exactly the day's baskets ingested before its
mark, and the store views read it only while it still does, so their figures are exact whether
the rollup is current, behind the feed, or stale."""

import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import boto3
import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import EqualTo

from lake_contract import tables
from lambda_ingest.handler import lambda_handler
from supermarket_dagster.defs.sales.assets import store_hourly_totals
from supermarket_queries import store_totals
from supermarket_queries.engine import LocalEngine
from tests.factories import ndjson, record
from tests.moto_server import table_rows

DAY = date(2026, 3, 2)
STORE_VIEWS = ("store_hourly_sales", "daily_sales_by_store", "hourly_sales", "payment_method_mix")


def _baskets(rng: random.Random, prefix: str, count: int) -> list[dict]:
    return [
        record(
            f"{prefix}-{n}",
            store_id=f"STORE{rng.randint(1, 3):04d}",
            transaction_datetime=f"{DAY}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:07Z",
            payment_method=rng.choice(["credit_card", "cash", "mobile"]),
            items=[
                {
                    "sku_id": f"SKU{rng.randint(1, 9):05d}",
                    "quantity": rng.randint(1, 4),
                    "unit_price": rng.randint(1, 2_000) / 100,
                }
                for _ in range(rng.randint(1, 3))
            ],
        )
        for n in range(count)
    ]


def _land(bucket: str, name: str, baskets: list[dict]) -> None:
    key = f"raw/incoming/dt={DAY}/{name}.ndjson"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=ndjson(*baskets))
    lambda_handler({"Records": [{"eventSource": "aws:s3", "s3": {
        "bucket": {"name": bucket}, "object": {"key": key}}}]}, None)  # fmt: skip


def _sums(baskets: list[dict]) -> dict[tuple, tuple[int, Decimal]]:
    """(store, hour, payment method) -> baskets and revenue, from the logged JSON."""
    count, revenue = Counter(), defaultdict(Decimal)
    for b in baskets:
        at = datetime.fromisoformat(b["transaction_datetime"]).replace(minute=0, second=0)
        at = at.replace(tzinfo=None)  # UTC, as the views give it
        key = (b["store_id"], at, b["payment_method"])
        count[key] += 1
        revenue[key] += sum(i["quantity"] * Decimal(str(i["unit_price"])) for i in b["items"])
    return {key: (count[key], revenue[key]) for key in count}


def _rollup() -> dict[tuple, tuple[int, Decimal]]:
    rows = table_rows(store_totals.STORE_HOURLY_TOTALS, row_filter=EqualTo("dt", DAY.isoformat()))
    return {(r["store_id"], r["hour"].replace(tzinfo=None), r["payment_method"]):
            (r["transactions"], r["revenue"]) for r in rows.to_pylist()}  # fmt: skip


def _view(engine: LocalEngine, name: str) -> list[dict]:
    rows = engine.view(name, f"dt = DATE '{DAY}'").to_pylist()
    return sorted(rows, key=lambda r: [str(v) for v in r.values()])


def _overwrite_rollup(rows: pa.Table) -> None:
    lake = tables.LakeTables(tables.glue_catalog(), tables.database_from_environment())
    target = lake.current(store_totals.STORE_HOURLY_TOTALS)
    dated = rows.append_column("dt", pa.repeat(pa.scalar(DAY, pa.date32()), rows.num_rows))
    target.overwrite(
        tables.as_table_rows(store_totals.STORE_HOURLY_TOTALS, dated),
        overwrite_filter=EqualTo("dt", DAY.isoformat()),
    )


def test_the_rollup_sums_the_baskets_ingested_before_its_mark_and_the_views_add_the_rest(lake):
    rng = random.Random(5)
    before = _baskets(rng, "early", 120)
    for n in range(3):
        _land(lake.bucket, f"early-{n}", before[n * 40 : (n + 1) * 40])
    mark = datetime.now(UTC)
    after = _baskets(rng, "late", 50)
    _land(lake.bucket, "late-0", after)
    engine = LocalEngine(f"s3://{lake.bucket}")
    from_rows = {name: _view(engine, name) for name in STORE_VIEWS}  # no rollup yet

    totals = store_totals.roll_up_day(lake.tables(), DAY, mark, datetime.now(UTC))

    assert _rollup() == _sums(before)
    assert (totals.transactions, totals.rows) == (120, len(_sums(before)))
    everything = _sums(before + after)
    hourly = {(r["store_id"], r["hour"], r["payment_method"]): (r["transactions"], r["revenue"])
              for r in _view(engine, "store_hourly_sales")}  # fmt: skip
    assert hourly == everything
    for name in STORE_VIEWS:
        assert _view(engine, name) == from_rows[name], name


def test_a_rollup_that_no_longer_sums_the_days_rows_before_its_mark_is_not_read(lake):
    rng = random.Random(6)
    baskets = _baskets(rng, "t", 60)
    _land(lake.bucket, "t", baskets)
    engine = LocalEngine(f"s3://{lake.bucket}")
    exact = {name: _view(engine, name) for name in STORE_VIEWS}  # no rollup yet
    store_totals.roll_up_day(lake.tables(), DAY, datetime.now(UTC), datetime.now(UTC))
    assert {name: _view(engine, name) for name in STORE_VIEWS} == exact
    current = table_rows(store_totals.STORE_HOURLY_TOTALS, row_filter=EqualTo("dt", str(DAY)))
    current = current.drop_columns(["dt"])
    revenue = current["revenue"].type

    # The same count with other money: read, which shows the rollup is what the view sums.
    doubled = pc.multiply(current["revenue"], pa.scalar(Decimal(2), pa.decimal128(1, 0)))
    _overwrite_rollup(current.set_column(4, "revenue", doubled.cast(revenue)))
    assert _view(engine, "daily_sales_by_store") != exact["daily_sales_by_store"]
    # One basket fewer than the day holds before the mark (a dedupe would do the opposite):
    # the rollup is stale and the day is summed from its rows.
    fewer = pc.subtract(current["transactions"], pa.scalar(1, pa.int64()))
    _overwrite_rollup(current.set_column(3, "transactions", fewer))
    for name in STORE_VIEWS:
        assert _view(engine, name) == exact[name], name


def test_the_asset_rolls_up_the_day_through_a_few_minutes_ago(lake, monkeypatch):
    rng = random.Random(7)
    baskets = _baskets(rng, "t", 30)
    _land(lake.bucket, "t", baskets)

    first = dg.materialize([store_hourly_totals], resources={"lake": lake},
                           partition_key=DAY.isoformat())  # fmt: skip
    assert first.success
    assert _rollup() == {}  # everything landed within the last SETTLED

    monkeypatch.setattr(store_totals, "SETTLED", timedelta(0))
    second = dg.materialize([store_hourly_totals], resources={"lake": lake},
                            partition_key=DAY.isoformat())  # fmt: skip
    assert _rollup() == _sums(baskets)
    metadata = second.asset_materializations_for_node("store_hourly_totals")[0].metadata
    assert metadata["transactions"].value == 30
