"""Every curated view on generated data in a moto server, against figures computed
independently from the generated JSON, to the cent and the count."""

import json
import os
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pytest
from pyiceberg.expressions import AlwaysTrue, EqualTo

from lake_contract import layout, tables
from lake_contract.s3 import LakeBucket, aws_client
from lake_contract.tables import LakeTables
from lambda_ingest.events import SourceObject
from lambda_ingest.handler import convert, lambda_handler, land
from simulator.reference import generate_skus, generate_supermarkets
from supermarket_cli.main import main
from supermarket_queries import rollup
from supermarket_queries.engine import LocalEngine
from tests.factories import ndjson, record
from tests.moto_server import iceberg_lake

BUCKET = "query-lake"
DAYS = [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]


def _lake_tables() -> LakeTables:
    return LakeTables(tables.glue_catalog(), tables.DEFAULT_DATABASE)


def _roll_up(day: date) -> rollup.DayRollup:
    return rollup.roll_up_iceberg_day(_lake_tables(), day, datetime.now(UTC))


def _remove_rollups() -> None:
    _lake_tables().current(rollup.SKU_DAILY_SALES).delete(AlwaysTrue())


def _load(work: Path, bucket: str) -> None:
    """The generated reference tables and history in the bucket, the history ingested day by
    day through the Lambda's transform and committer, as the backfill does."""
    lake = LakeBucket(bucket)
    for table in ("supermarkets", "skus"):
        lake.write(layout.reference_key(table), (work / layout.reference_key(table)).read_bytes())
    for day_folder in sorted((work / "raw" / "history").glob("dt=*")):
        sources = []
        for path in sorted(day_folder.glob("*.ndjson")):
            key = path.relative_to(work).as_posix()
            lake.write(key, path.read_bytes())
            sources.append(convert(SourceObject(bucket, key, None, None), bucket))
        land(sources, tables.DEFAULT_DATABASE)


def _transactions(raw: Path) -> list[dict]:
    found = []
    for path in sorted(raw.rglob("*.ndjson")):
        for line in path.read_text().splitlines():
            t = json.loads(line, parse_float=Decimal)
            t["at"] = datetime.fromisoformat(t["transaction_datetime"]).astimezone(UTC)
            t["day"] = t["at"].date()
            t["total"] = sum(i["quantity"] * i["unit_price"] for i in t["items"])
            found.append(t)
    return found


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    work = tmp_path_factory.mktemp("lake")
    monkeypatch = pytest.MonkeyPatch()
    with iceberg_lake(monkeypatch, BUCKET):
        main(["generate", "reference", "--out", str(work), "--skus", "400", "--seed", "4"])
        main(["generate", "history", "--out", str(work), "--transactions", "3000", "--seed", "4",
              "--skus", "400", "--start", "2026-03-01", "--end", "2026-03-03"])  # fmt: skip
        _load(work, BUCKET)
        yield LocalEngine(f"s3://{BUCKET}"), _transactions(work / "raw")
    monkeypatch.undo()


def _rows(table, *key):
    return {tuple(r[k] for k in key): r for r in table.to_pylist()}


def test_daily_sales_by_store(lake):
    engine, transactions = lake
    expected = defaultdict(lambda: [0, Decimal(0)])
    for t in transactions:
        expected[(t["day"], t["store_id"])][0] += 1
        expected[(t["day"], t["store_id"])][1] += t["total"]
    names = {s["store_id"]: s["store_name"] for s in generate_supermarkets(5, 4).to_pylist()}

    got = _rows(engine.view("daily_sales_by_store"), "dt", "store_id")

    assert set(got) == set(expected)
    for key, (count, revenue) in expected.items():
        assert (got[key]["transactions"], got[key]["revenue"]) == (count, revenue)
        assert got[key]["store_name"] == names[key[1]]


def _rank(figures, key):
    """SQL's RANK() within the day: one more than the SKUs strictly ahead; ties share a rank."""
    return 1 + sum(v > figures[key] for k, v in figures.items() if k[0] == key[0])


def _assert_top_skus_match(engine, transactions):
    units, revenue = Counter(), defaultdict(Decimal)
    for t in transactions:
        for i in t["items"]:
            units[(t["day"], i["sku_id"])] += i["quantity"]
            revenue[(t["day"], i["sku_id"])] += i["quantity"] * i["unit_price"]

    got = _rows(engine.view("top_skus"), "dt", "sku_id")

    assert {k: (r["units"], r["revenue"]) for k, r in got.items()} == {
        k: (units[k], revenue[k]) for k in units
    }
    for key, row in got.items():
        assert row["product_name"] and row["category"], key
        assert (row["revenue_rank"], row["units_rank"]) == (
            _rank(revenue, key),
            _rank(units, key),
        )


# Rolled up: none (the view sums every line), one day (rollup and lines side by side), all.
@pytest.mark.parametrize("rolled_up", [[], DAYS[:1], DAYS], ids=["none", "one day", "every day"])
def test_top_skus_by_revenue_and_units(lake, rolled_up):
    engine, transactions = lake
    try:
        for day in rolled_up:
            assert _roll_up(day).lines > 0

        _assert_top_skus_match(engine, transactions)
    finally:
        _remove_rollups()  # the module's lake goes back to having none


def test_top_skus_reads_a_days_rollup_only_while_it_sums_the_days_lines(lake):
    engine, _ = lake
    day = DAYS[1]
    on_day = EqualTo("dt", day.isoformat())
    rollups = _lake_tables().current(rollup.SKU_DAILY_SALES)
    try:
        _roll_up(day)
        true = _rows(engine.view("top_skus", f"dt = DATE '{day}'"), "sku_id")
        summed = rollups.refresh().scan(row_filter=on_day).to_arrow()
        revenue_type = summed.schema.field("revenue").type
        twice = pa.array([r * 2 for r in summed["revenue"].to_pylist()], revenue_type)
        doubled = summed.set_column(summed.schema.get_field_index("revenue"), "revenue", twice)
        rollups.overwrite(doubled.cast(summed.schema), overwrite_filter=on_day)  # same lines

        read = _rows(engine.view("top_skus", f"dt = DATE '{day}'"), "sku_id")

        assert {k: r["revenue"] for k, r in read.items()} == {
            k: 2 * r["revenue"] for k, r in true.items()
        }
        lines = [n + (i == 0) for i, n in enumerate(summed["lines"].to_pylist())]
        lines_at = summed.schema.get_field_index("lines")
        one_more_line = doubled.set_column(lines_at, "lines", pa.array(lines, pa.int64()))
        rollups.overwrite(one_more_line.cast(summed.schema), overwrite_filter=on_day)
        assert _rows(engine.view("top_skus", f"dt = DATE '{day}'"), "sku_id") == true
    finally:
        _remove_rollups()


def test_hourly_sales(lake):
    engine, transactions = lake
    # Athena's timestamps carry no zone: UTC wall-clock values.
    expected = Counter(
        t["at"].replace(minute=0, second=0, microsecond=0, tzinfo=None) for t in transactions
    )

    got = {r["hour"]: r["transactions"] for r in engine.view("hourly_sales").to_pylist()}

    assert got == dict(expected)


def test_basket_size_distribution(lake):
    engine, transactions = lake
    expected = Counter((t["day"], len(t["items"])) for t in transactions)

    got = {
        (r["dt"], r["basket_lines"]): r["baskets"] for r in engine.view("basket_size").to_pylist()
    }

    assert got == dict(expected)


def test_payment_method_mix(lake):
    engine, transactions = lake
    per_day = Counter(t["day"] for t in transactions)
    expected = Counter((t["day"], t["payment_method"]) for t in transactions)

    got = _rows(engine.view("payment_method_mix"), "dt", "payment_method")

    assert {k: r["transactions"] for k, r in got.items()} == dict(expected)
    for (day, method), row in got.items():
        assert row["share_of_transactions"] == pytest.approx(expected[(day, method)] / per_day[day])


def test_a_one_day_query_reads_only_that_days_files(lake):
    engine, _ = lake

    profile = engine.query(
        "EXPLAIN ANALYZE SELECT count(*) FROM transactions WHERE dt = DATE '2026-03-02'"
    ).to_pylist()[0]["explain_value"]

    assert "Total Files Read: 1" in profile, profile


def test_a_reference_table_is_read_by_its_key_never_by_a_listing(lake):
    # moto lists by scanning every key of the bucket, so a listing grows with the lake: at
    # 30,000 live files one of `supermarkets` was 96 ms of a 114 ms view.
    engine, _ = lake
    engine.query("SELECT COUNT(*) FROM supermarkets")  # bound, and the object cached
    engine.connection.execute("CALL enable_logging('HTTP')")
    try:
        stores = engine.query("SELECT store_id FROM supermarkets").num_rows
        requests = engine.connection.execute(
            "SELECT request.type, request.url FROM duckdb_logs_parsed('HTTP')"
        ).fetchall()
    finally:
        engine.connection.execute("CALL disable_logging()")
        engine.connection.execute("CALL truncate_duckdb_logs()")

    assert stores == 5
    assert requests, "no request logged: the check would prove nothing"
    assert all(url.endswith(layout.reference_key("supermarkets")) for _, url in requests), requests


def test_a_new_engine_learns_every_tables_snapshot_from_one_catalog_call(lake):
    # A GetTable per Iceberg table was ~8 ms each on moto, at every start of a reader.
    calls = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    glue = aws_client("glue", os.environ["AWS_ENDPOINT_URL"])
    glue.meta.events.register("before-call.glue", count)
    try:
        engine = LocalEngine(f"s3://{BUCKET}")
        stores = engine.view("daily_sales_by_store").num_rows
    finally:
        glue.meta.events.unregister("before-call.glue", count)

    assert stores > 0
    assert calls == ["GetTables", "GetTables"]  # at start-up, then the query follows commits


def test_a_query_as_of_an_earlier_snapshot_sees_the_lake_as_it_was(lake):
    engine, transactions = lake
    history = _lake_tables().current("transactions").history()
    first_day = history[0].snapshot_id  # the first commit: the first day alone

    engine.as_of("transactions", first_day)
    then = engine.query("SELECT count(*) AS n, min(dt) AS d, max(dt) AS e FROM transactions",
                        follow=False).to_pylist()[0]  # fmt: skip
    now = engine.query("SELECT count(*) AS n FROM transactions").to_pylist()[0]

    assert then == {"n": sum(t["day"] == DAYS[0] for t in transactions), "d": DAYS[0],
                    "e": DAYS[0]}  # fmt: skip
    assert now["n"] >= len(transactions)


# Adds a day to the shared lake: it stays the last test to use the module's lake.
def test_rows_the_lambda_just_wrote_are_in_the_next_query(lake):
    engine, transactions = lake
    before = engine.view("freshness").to_pylist()[0]
    key = "raw/incoming/dt=2026-03-04/live.ndjson"
    stamp = "2026-03-04T09:30:00.500Z"
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key=key, Body=ndjson(record("live-1", transaction_datetime=stamp))
    )
    lambda_handler({"Records": [{"eventSource": "aws:s3", "s3": {
        "bucket": {"name": BUCKET}, "object": {"key": key}}}]}, None)  # fmt: skip

    after = engine.view("freshness").to_pylist()[0]  # same engine, no refresh step

    assert before["transactions"] == len(transactions)
    assert after["transactions"] == len(transactions) + 1
    assert after["latest_transaction_at"] == datetime(2026, 3, 4, 9, 30, 0, 500000)  # UTC
    assert after["latest_ingested_at"] > before["latest_ingested_at"]
    daily = _rows(engine.view("daily_sales_by_store", "dt = DATE '2026-03-04'"), "store_id")
    assert daily[("STORE0001",)]["revenue"] == Decimal("16.98")


def _lambda(bucket: str, key: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    lambda_handler({"Records": [{"eventSource": "aws:s3", "s3": {
        "bucket": {"name": bucket}, "object": {"key": key}}}]}, None)  # fmt: skip


def test_a_late_file_after_the_rollup_is_in_top_skus_at_once_and_after_the_rerun(
    tmp_path, monkeypatch
):
    with iceberg_lake(monkeypatch, "late-lake"):
        main(["generate", "reference", "--out", str(tmp_path), "--skus", "50", "--seed", "5"])
        main(["generate", "history", "--out", str(tmp_path), "--transactions", "400", "--seed",
              "5", "--skus", "50", "--start", "2026-03-01", "--end", "2026-03-02"])  # fmt: skip
        _load(tmp_path, "late-lake")
        for day in DAYS[:2]:
            _roll_up(day)
        engine = LocalEngine("s3://late-lake")
        transactions = _transactions(tmp_path / "raw")
        _assert_top_skus_match(engine, transactions)

        shelf = generate_skus(50, 5).to_pylist()[:2]
        items = [{"sku_id": k["sku_id"], "quantity": 7, "unit_price": float(k["price"])}
                 for k in shelf]  # fmt: skip
        late = record("late-1", transaction_datetime="2026-03-01T23:59:59.000Z", items=items)
        _lambda("late-lake", "raw/incoming/dt=2026-03-01/late.ndjson", ndjson(late))
        (tmp_path / "raw" / "late.ndjson").write_bytes(ndjson(late))
        transactions = _transactions(tmp_path / "raw")

        _assert_top_skus_match(engine, transactions)  # the stale day is summed from its lines
        _roll_up(DAYS[0])  # what the automation runs
        _assert_top_skus_match(engine, transactions)


def test_an_empty_lake_answers_with_no_rows_then_with_the_first_arrivals(monkeypatch):
    with iceberg_lake(monkeypatch, "empty-lake"):
        engine = LocalEngine("s3://empty-lake")

        assert engine.view("daily_sales_by_store").num_rows == 0
        assert engine.view("freshness").to_pylist()[0]["transactions"] == 0

        key = "raw/incoming/dt=2026-03-04/first.ndjson"
        boto3.client("s3").put_object(Bucket="empty-lake", Key=key, Body=ndjson(record("first")))
        lambda_handler({"Records": [{"eventSource": "aws:s3", "s3": {
            "bucket": {"name": "empty-lake"}, "object": {"key": key}}}]}, None)  # fmt: skip

        assert engine.view("freshness").to_pylist()[0]["transactions"] == 1  # same engine
        assert engine.view("basket_size").to_pylist()[0]["baskets"] == 1


def test_quarantine_is_looked_for_only_by_queries_that_read_it_and_found_when_it_comes(
    monkeypatch,
):
    with iceberg_lake(monkeypatch, "clean-lake"):
        engine = LocalEngine("s3://clean-lake")
        looked, look = [], engine._has_files
        monkeypatch.setattr(engine, "_has_files", lambda p: looked.append(p) or look(p))

        assert engine.view("quarantine_reasons").num_rows == 0
        assert len(looked) == 1
        engine.view("freshness")
        engine.query("SELECT COUNT(*) FROM transactions")
        assert len(looked) == 1  # a listing of quarantine/ per query, for nothing, before

        key = "raw/incoming/dt=2026-03-04/bad.ndjson"
        body = ndjson(record("good"), "not json")
        boto3.client("s3").put_object(Bucket="clean-lake", Key=key, Body=body)
        lambda_handler({"Records": [{"eventSource": "aws:s3", "s3": {
            "bucket": {"name": "clean-lake"}, "object": {"key": key}}}]}, None)  # fmt: skip

        (reason,) = engine.view("quarantine_reasons").to_pylist()  # same engine
        assert (reason["records"], reason["last_source_key"]) == (1, key)
        assert engine.query("SELECT COUNT(*) AS n FROM quarantine").to_pylist() == [{"n": 1}]
