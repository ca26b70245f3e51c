"""The store totals rollups on a moto server: they sum exactly the day's rows ingested before
their mark, and the store views read them only while they still do, so the figures are exact
whether the rollups are current, behind the feed, or stale."""

import json
import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.expressions import EqualTo

from lake_contract import tables
from lambda_ingest.handler import lambda_handler
from supermarket_dagster.defs.sales.assets import store_hourly_totals, store_sku_totals
from supermarket_queries import store_totals
from supermarket_queries.engine import LocalEngine
from tests.factories import ndjson, record
from tests.moto_server import table_rows

DAY = date(2026, 3, 2)
STORE_VIEWS = ("store_hourly_sales", "daily_sales_by_store", "hourly_sales", "payment_method_mix",
               "store_top_skus", "top_skus")  # fmt: skip


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


def _land_around_a_mark(
    bucket: str, rng: random.Random, early: int, late: int
) -> tuple[list[dict], datetime, list[dict]]:
    """Three files of `early` baskets, a mark, then one file of `late` baskets."""
    before = _baskets(rng, "early", early)
    for n in range(3):
        _land(bucket, f"early-{n}", before[n * early // 3 : (n + 1) * early // 3])
    mark = datetime.now(UTC)
    after = _baskets(rng, "late", late)
    _land(bucket, "late-0", after)
    return before, mark, after


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


def _sku_sums(baskets: list[dict]) -> dict[tuple, tuple[int, Decimal, int]]:
    """(store, SKU) -> units, revenue and lines, from the logged JSON."""
    sums: dict[tuple, tuple[int, Decimal, int]] = {}
    for b in baskets:
        for i in b["items"]:
            units, revenue, lines = sums.get((b["store_id"], i["sku_id"]), (0, Decimal(0), 0))
            amount = i["quantity"] * Decimal(str(i["unit_price"]))
            sums[b["store_id"], i["sku_id"]] = (units + i["quantity"], revenue + amount, lines + 1)
    return sums


def _rows(totals: store_totals.StoreTotals) -> list[dict]:
    return table_rows(totals.name, row_filter=EqualTo("dt", DAY.isoformat())).to_pylist()


def _rollup() -> dict[tuple, tuple[int, Decimal]]:
    return {(r["store_id"], r["hour"].replace(tzinfo=None), r["payment_method"]):
            (r["transactions"], r["revenue"]) for r in _rows(store_totals.HOURLY)}  # fmt: skip


def _sku_rollup() -> dict[tuple, tuple[int, Decimal, int]]:
    return {(r["store_id"], r["sku_id"]): (r["units"], r["revenue"], r["lines"])
            for r in _rows(store_totals.SKUS)}  # fmt: skip


def _view(engine: LocalEngine, name: str) -> list[dict]:
    rows = engine.view(name, f"dt = DATE '{DAY}'").to_pylist()
    return sorted(rows, key=lambda r: [str(v) for v in r.values()])


def _overwrite_rollup(totals: store_totals.StoreTotals, rows: pa.Table) -> None:
    lake = tables.LakeTables(tables.glue_catalog(), tables.database_from_environment())
    target = lake.current(totals.name)
    target.overwrite(
        tables.as_table_rows(totals.name, rows), overwrite_filter=EqualTo("dt", DAY.isoformat())
    )


def _roll_up(lake, mark: datetime) -> list[store_totals.DayTotals]:
    return [store_totals.roll_up_day(lake.tables(), totals, DAY, mark, datetime.now(UTC))
            for totals in store_totals.ROLLUPS]  # fmt: skip


def test_the_rollup_sums_the_baskets_ingested_before_its_mark_and_the_views_add_the_rest(lake):
    before, mark, after = _land_around_a_mark(lake.bucket, random.Random(5), 120, 50)
    engine = LocalEngine(f"s3://{lake.bucket}")
    from_rows = {name: _view(engine, name) for name in STORE_VIEWS}  # no rollup yet

    hourly, skus = _roll_up(lake, mark)

    assert _rollup() == _sums(before)
    assert (hourly.summed, hourly.rows) == (120, len(_sums(before)))
    assert _sku_rollup() == _sku_sums(before)
    assert skus.summed == sum(len(b["items"]) for b in before)
    everything = _sums(before + after)
    hourly = {(r["store_id"], r["hour"], r["payment_method"]): (r["transactions"], r["revenue"])
              for r in _view(engine, "store_hourly_sales")}  # fmt: skip
    assert hourly == everything
    for name in STORE_VIEWS:
        assert _view(engine, name) == from_rows[name], name


@pytest.mark.parametrize(
    ("totals", "view"),
    [
        (store_totals.HOURLY, "store_hourly_sales"),
        (store_totals.SKUS, "store_top_skus"),
        (store_totals.SKUS, "top_skus"),
    ],
)
def test_a_rollup_that_no_longer_sums_the_days_rows_before_its_mark_is_not_read(lake, totals, view):
    rng = random.Random(6)
    baskets = _baskets(rng, "t", 60)
    _land(lake.bucket, "t", baskets)
    engine = LocalEngine(f"s3://{lake.bucket}")
    exact = {name: _view(engine, name) for name in STORE_VIEWS}  # no rollup yet
    _roll_up(lake, datetime.now(UTC))
    assert {name: _view(engine, name) for name in STORE_VIEWS} == exact
    current = table_rows(totals.name, row_filter=EqualTo("dt", str(DAY)))
    revenue = current.schema.field("revenue").type

    # The same count with other money: read, which shows the rollup is what the view sums.
    doubled = pc.multiply(current["revenue"], pa.scalar(Decimal(2), pa.decimal128(1, 0)))
    at = current.schema.get_field_index("revenue")
    _overwrite_rollup(totals, current.set_column(at, "revenue", doubled.cast(revenue)))
    assert _view(engine, view) != exact[view]
    # A rollup missing some of the day's rows before the mark (as after a re-ingestion; a
    # dedupe leaves one with more): stale, so the day is summed from its rows.
    _overwrite_rollup(totals, current.slice(1))
    for name in STORE_VIEWS:
        assert _view(engine, name) == exact[name], name


def test_the_assets_roll_up_the_day_through_a_few_minutes_ago(lake, monkeypatch):
    rng = random.Random(7)
    baskets = _baskets(rng, "t", 30)
    _land(lake.bucket, "t", baskets)
    assets = [store_hourly_totals, store_sku_totals]

    first = dg.materialize(assets, resources={"lake": lake}, partition_key=DAY.isoformat())
    assert first.success
    assert (_rollup(), _sku_rollup()) == ({}, {})  # everything landed within the last SETTLED

    monkeypatch.setattr(store_totals, "SETTLED", timedelta(0))
    second = dg.materialize(assets, resources={"lake": lake}, partition_key=DAY.isoformat())
    assert (_rollup(), _sku_rollup()) == (_sums(baskets), _sku_sums(baskets))
    hourly = second.asset_materializations_for_node("store_hourly_totals")[0].metadata
    assert hourly["transactions"].value == 30
    skus = second.asset_materializations_for_node("store_sku_totals")[0].metadata
    assert skus["lines"].value == sum(len(b["items"]) for b in baskets)


def _iceberg_scans(engine: LocalEngine, sql: str, profile: Path) -> list[dict]:
    """The Iceberg scans DuckDB ran for the query: rows out, data files read, dynamic filters,
    columns read."""
    engine.query(sql)  # binds the tables' current snapshots first
    engine.connection.execute("PRAGMA enable_profiling = 'json'")
    engine.connection.execute(f"PRAGMA profiling_output = '{profile}'")
    try:
        engine.query(sql, follow=False)
    finally:
        engine.connection.execute("PRAGMA disable_profiling")
    scans, nodes = [], [json.loads(profile.read_text())]
    while nodes:
        node = nodes.pop()
        nodes += node.get("children", [])
        info = node.get("extra_info") or {}
        if info.get("Function") == "ICEBERG_SCAN":
            scans.append({"rows": node["operator_cardinality"],
                          "files": int(info.get("Total Files Read", 0)),
                          "filters": str(info.get("Dynamic Filters", "")),
                          "columns": str(info.get("Projections", ""))})  # fmt: skip
    return scans


def _since_mark_scans(engine: LocalEngine, view: str, profile: Path) -> list[tuple[int, int]]:
    """(rows, data files) of each scan of the view that the mark's comparison reached."""
    scans = _iceberg_scans(engine, f"SELECT * FROM {view} WHERE dt = DATE '{DAY}'", profile)
    return [(s["rows"], s["files"]) for s in scans if "ingested_at" in s["filters"]]


def test_an_open_day_view_reads_only_the_files_landed_since_the_mark(lake, tmp_path):
    _, mark, late = _land_around_a_mark(lake.bucket, random.Random(8), 90, 20)
    engine = LocalEngine(f"s3://{lake.bucket}")
    lines = sum(len(b["items"]) for b in late)
    views = {"store_hourly_sales": len(late), "store_top_skus": lines, "top_skus": lines}

    # No totals yet: the comparison is with a time no row has, so no file is read for it.
    for view in views:
        assert _since_mark_scans(engine, view, tmp_path / "none.json") == [(0, 0)], view

    _roll_up(lake, mark)
    for view, since_mark in views.items():
        # The rows since the mark come from the one file landed since: the mark is pushed into
        # the scan. (The engine gave the column through a cast before, and the scan read the day.)
        assert _since_mark_scans(engine, view, tmp_path / f"{view}.json") == [(since_mark, 1)]


@pytest.mark.parametrize("view", ["store_top_skus", "top_skus"])
def test_with_the_totals_an_open_day_sku_view_reads_no_line_from_before_the_mark(
    lake, tmp_path, view
):
    _, mark, late = _land_around_a_mark(lake.bucket, random.Random(9), 90, 20)
    _roll_up(lake, mark)
    engine = LocalEngine(f"s3://{lake.bucket}")
    scans = _iceberg_scans(
        engine, f"SELECT * FROM {view} WHERE dt = DATE '{DAY}'", tmp_path / "p.json"
    )
    # Every scan that reads lines' quantities, together: the lines since the mark, no more. (The
    # rest of the day comes from the totals; its lines are only counted, by their dt.) A scan
    # picking the day's lines by `dt <>` the totals' day read them all, to drop them.
    lines_read = sum(s["rows"] for s in scans if "quantity" in s["columns"])
    assert lines_read == sum(len(b["items"]) for b in late)
