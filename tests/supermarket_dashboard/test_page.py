"""The dashboard in headless Chromium, served by `supermarket dashboard` on a moto lake with
known generated data: tiles against the JSON, the store filter, a stalled feed turning the
indicator amber then red, and a file through the Lambda path showing up without a reload."""

import os
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from playwright.sync_api import Page, expect

from lake_contract import tables
from lake_contract.freshness import FAIL_AFTER_SECONDS, WARN_AFTER_SECONDS
from lake_contract.tables import LakeTables
from lambda_ingest.committer import commit_sources
from lambda_ingest.handler import lambda_handler
from lambda_ingest.transform import transform
from supermarket_cli.convert import find_sources
from supermarket_cli.main import main
from supermarket_cli.processes import Supervisor, free_port
from supermarket_cli.stack import children
from tests.factories import ndjson, record
from tests.moto_server import moto_server_process, use_test_aws
from tests.supermarket_dashboard import expected

BUCKET = "page-lake"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
REFRESH_SECONDS = 1.0
pytestmark = pytest.mark.slow


def _upload(folder: Path) -> None:
    s3 = boto3.client("s3")
    for path in sorted((folder / "lake").rglob("*.parquet")):
        s3.upload_file(str(path), BUCKET, path.relative_to(folder).as_posix())


def _load_history(work: Path, landed_seconds_ago: float) -> None:
    """The generated logs committed as if ingested that long ago (again: their rows replaced)."""
    landed = datetime.now(UTC) - timedelta(seconds=landed_seconds_ago)
    results = [
        (key, transform(path.read_bytes(), key, landed))
        for path in find_sources([work / "raw"])
        for key in [path.relative_to(work).as_posix()]
    ]
    commit_sources(LakeTables(tables.glue_catalog(), tables.DEFAULT_DATABASE), results, {})


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    work = tmp_path_factory.mktemp("page")
    monkeypatch = pytest.MonkeyPatch()
    today = datetime.now(UTC).date()
    with moto_server_process() as endpoint:
        use_test_aws(monkeypatch, endpoint)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        tables.create_tables(tables.glue_catalog(), f"s3://{BUCKET}")
        main(["generate", "reference", "--out", str(work), "--skus", "200", "--seed", "3"])
        first = str(today - timedelta(days=2))
        main(["generate", "history", "--out", str(work), "--transactions", "1500", "--seed", "3",
              "--skus", "200", "--start", first, "--end", str(today)])  # fmt: skip
        _upload(work)  # reference tables
        _load_history(work, landed_seconds_ago=WARN_AFTER_SECONDS - 25)  # green for a while
        port = free_port()
        env = {**os.environ, "STORE_TIMEZONE": "UTC"}
        board = children.dashboard(f"s3://{BUCKET}", "127.0.0.1", port, env, REFRESH_SECONDS)
        with Supervisor(work / "logs") as supervisor:  # as `supermarket up` starts it
            supervisor.start(board)
            yield f"http://127.0.0.1:{port}", work, expected.transactions(work / "raw" / "history")
    monkeypatch.undo()


def _tile(page: Page, label: str):
    return page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue")


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


def _expect_today(page: Page, found, stores=()) -> None:
    today = datetime.now(UTC).date()
    sales, count, average, items = expected.tiles(expected.chosen(found, today, today, stores))
    expect(_tile(page, "Today's sales")).to_have_text(_money(sales))
    expect(_tile(page, "Transactions today")).to_have_text(f"{count:,}")
    expect(_tile(page, "Average basket")).to_have_text(_money(average))
    expect(_tile(page, "Items per basket")).to_have_text(f"{items:.1f}")


def _staleness(page: Page, icon: str):
    """The 'last transaction landed' badge showing the icon of one state (check_circle: fresh,
    schedule: amber, error: red)."""
    badge = page.locator(".stMarkdownBadge").filter(has_text="last transaction landed")
    return badge.filter(has=page.locator(f"[aria-label='{icon} icon']"))


def _lambda(found, stores, count):
    """count transactions of now in each store, through the Lambda's handler; returns them
    added to the known ones."""
    now = datetime.now(UTC)
    records = [record(f"live-{store}-{n}", store_id=store, transaction_datetime=now.isoformat())
               for store in stores for n in range(count)]  # fmt: skip
    key = f"raw/incoming/dt={now.date()}/page-test-{now.timestamp():.0f}.ndjson"
    body = ndjson(*records)
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    lambda_handler({"Records": [{"eventSource": "aws:s3", "s3": {
        "bucket": {"name": BUCKET}, "object": {"key": key}}}]}, None)  # fmt: skip
    for r in records:
        r["at"] = datetime.fromisoformat(r["transaction_datetime"]).astimezone(UTC)
        r["items"] = [{**i, "unit_price": Decimal(str(i["unit_price"]))} for i in r["items"]]
        r["total"] = sum(i["quantity"] * i["unit_price"] for i in r["items"])
    return [*found, *records]


def test_the_page_follows_the_lake_live(dashboard, page: Page):
    url, work, found = dashboard
    page.goto(url)
    expect(page.get_by_text("Sales by store")).to_be_visible(timeout=30_000)
    page.evaluate("window.notReloaded = true")  # gone if anything reloads the page

    # Given the generated history: today's tiles are the JSON's figures, every chart is drawn.
    _expect_today(page, found)
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(6)
    expect(page.get_by_text("0 records quarantined")).to_be_visible()
    expect(_staleness(page, "check_circle")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(1000)  # the charts' own transitions end
    page.screenshot(path=ARTIFACTS / "dashboard-1440x900.png")

    # When one store is chosen, the tiles are that store's.
    page.get_by_label("Stores").click()
    page.keyboard.type("STORE0002")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    _expect_today(page, found, ("STORE0002",))

    # The feed has stopped: amber once the last rows are WARN_AFTER_SECONDS old, by the
    # page's own clock, then red when a backfill leaves the newest rows older than the FAIL
    # window (waiting five minutes would make this test take six).
    expect(_staleness(page, "schedule")).to_be_visible(timeout=45_000)
    _load_history(work, landed_seconds_ago=FAIL_AFTER_SECONDS - 6)
    expect(_staleness(page, "error")).to_be_visible(timeout=30_000)

    # New transactions through the Lambda path: in the tiles within seconds, no reload.
    added_at = time.monotonic()
    found = _lambda(found, ("STORE0002", "STORE0004"), 3)
    _expect_today(page, found, ("STORE0002",))
    expect(_staleness(page, "check_circle")).to_be_visible()
    assert time.monotonic() - added_at < 5 + REFRESH_SECONDS
    assert page.evaluate("window.notReloaded") is True
