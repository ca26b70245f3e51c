"""Each panel's figures, from a generated lake through the views, against figures computed
from the generated JSON alone. No browser, no Streamlit."""

import shutil
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from lake_contract.freshness import FAIL_AFTER_SECONDS, WARN_AFTER_SECONDS
from supermarket_cli.main import main
from supermarket_dashboard import figures
from supermarket_dashboard.figures import Filters
from supermarket_queries.engine import LocalEngine
from tests.supermarket_dashboard import expected

DAYS = (date(2026, 3, 1), date(2026, 3, 3))
NOW = datetime(2026, 3, 3, 15, 30, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    work = tmp_path_factory.mktemp("lake")
    main(["generate", "reference", "--out", str(work), "--skus", "300", "--seed", "7"])
    main(["generate", "history", "--out", str(work), "--transactions", "3000", "--seed", "7",
          "--skus", "300", "--start", str(DAYS[0]), "--end", str(DAYS[1])])  # fmt: skip
    bad = work / "raw" / "bad" / "till-9.ndjson"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"transaction_id": "x"}\nnot json\n{"transaction_id": "y"}\n')
    main(["convert", str(work / "raw"), "--out", str(work)])
    return work, expected.transactions(work / "raw" / "history")


@pytest.fixture(scope="module")
def engine(lake):
    return LocalEngine(str(lake[0]))


# (start, end, stores, zone): the whole lake, one day and one store, two stores in New York time
FILTERS = [
    (DAYS[0], DAYS[1], (), UTC_ZONE),
    (date(2026, 3, 2), date(2026, 3, 2), ("STORE0002",), UTC_ZONE),
    (date(2026, 3, 2), date(2026, 3, 3), ("STORE0001", "STORE0004"), NEW_YORK),
]


@pytest.mark.parametrize(("start", "end", "stores", "zone"), FILTERS)
def test_sales_by_store_over_time_and_payment_mix_follow_the_filters(
    engine, lake, start, end, stores, zone
):
    selected = expected.chosen(lake[1], start, end, stores, zone)
    page = figures.figures(engine, Filters(start, end, stores, zone), NOW)

    got = {r["store_id"]: (r["transactions"], r["revenue"]) for _, r in page.by_store.iterrows()}
    assert got == expected.by_store(selected)
    assert list(page.by_store["revenue"]) == sorted(page.by_store["revenue"], reverse=True)
    hours = {r["hour"].to_pydatetime(): r["transactions"] for _, r in page.over_time.iterrows()}
    assert hours == expected.by_local_hour(selected, zone)
    assert all(h.tzinfo is not None and h.utcoffset() == h.astimezone(zone).utcoffset()
               for h in hours)  # fmt: skip
    mix = dict(zip(page.mix["payment_method"], page.mix["transactions"], strict=True))
    assert mix == expected.payment_mix(selected)
    assert page.mix["share"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize(("start", "end", "stores"), [(s, e, st) for s, e, st, _ in FILTERS[:2]])
def test_top_skus_and_basket_sizes_follow_the_filters(engine, lake, start, end, stores):
    selected = expected.on_utc_days(lake[1], start, end, stores)
    units, revenue = expected.per_sku(selected)
    page = figures.figures(engine, Filters(start, end, stores), NOW)

    assert list(page.top_by_revenue["sku_id"]) == expected.top(revenue, figures.TOP_SKUS)
    assert list(page.top_by_units["sku_id"]) == expected.top(units, figures.TOP_SKUS)
    for _, row in page.top_by_revenue.iterrows():
        assert (row["units"], row["revenue"]) == (units[row["sku_id"]], revenue[row["sku_id"]])
        assert row["product_name"] and row["category"]
    sizes = dict(zip(page.sizes["basket_lines"], page.sizes["baskets"], strict=True))
    assert sizes == expected.basket_sizes(selected)


@pytest.mark.parametrize("stores", [(), ("STORE0003",)])
def test_tiles_are_today_in_the_stores_time_zone(engine, lake, stores):
    today = NOW.date()
    sales, count, average, items = expected.tiles(
        expected.chosen(lake[1], today, today, stores, UTC_ZONE)
    )

    tiles = figures.figures(engine, Filters(DAYS[0], DAYS[1], stores), NOW).today

    assert (tiles.sales, tiles.transactions, tiles.average_basket) == (sales, count, average)
    assert tiles.items_per_basket == pytest.approx(items)
    assert isinstance(tiles.sales, Decimal)


def test_a_range_in_another_time_zone_is_cut_at_local_midnight(engine, lake):
    day = date(2026, 3, 2)  # New York: 05:00 UTC on the 2nd to 05:00 UTC on the 3rd
    filters = Filters(day, day, (), NEW_YORK)

    page = figures.figures(engine, filters, NOW)

    first, last = page.over_time["hour"].min(), page.over_time["hour"].max()
    assert first.date() == last.date() == day  # local dates, although UTC spans two days
    assert page.by_store["transactions"].sum() == len(
        expected.chosen(lake[1], day, day, (), NEW_YORK)
    )
    assert filters.utc_days() == (date(2026, 3, 2), date(2026, 3, 3))


def test_an_empty_range_gives_empty_panels_and_no_averages(engine):
    page = figures.figures(
        engine, Filters(date(2025, 1, 1), date(2025, 1, 2)), NOW.replace(year=2025)
    )

    assert page.by_store.empty and page.over_time.empty and page.top_by_units.empty
    assert page.today.transactions == 0 and page.today.sales == 0
    assert page.today.average_basket is None and page.today.items_per_basket is None


def test_the_quarantine_count_and_its_latest_reasons(engine):
    quarantine = figures.figures(engine, Filters(*DAYS), NOW).quarantine

    assert quarantine.records == 3
    reasons = set(quarantine.latest_reasons["reason"])
    assert any("not valid JSON" in r for r in reasons)
    assert any("store_id" in r for r in reasons)
    assert quarantine.latest_reasons["last_source_key"].str.endswith("till-9.ndjson").all()
    assert quarantine.latest_reasons["last_rejected_at"].notna().all()


@pytest.mark.parametrize(
    ("age", "state"),
    [(0, "ok"), (WARN_AFTER_SECONDS - 1, "ok"), (WARN_AFTER_SECONDS, "warn"),
     (FAIL_AFTER_SECONDS - 1, "warn"), (FAIL_AFTER_SECONDS, "fail")],
)  # fmt: skip
def test_staleness_follows_the_freshness_policys_windows(engine, age, state):
    fresh = figures.freshness(engine)
    now = fresh.latest_ingested_at + timedelta(seconds=age)

    assert fresh.seconds_since_landed(now) == pytest.approx(age)
    assert fresh.state(now) == state


def test_an_empty_lake_is_stale_and_shows_nothing(tmp_path):
    empty = LocalEngine(str(tmp_path))

    page = figures.figures(empty, Filters(*DAYS), NOW)

    assert page.freshness.latest_ingested_at is None and page.freshness.state(NOW) == "fail"
    assert page.quarantine.records == 0 and page.by_store.empty


def test_the_store_filter_lists_every_store_that_sold_whatever_is_chosen(engine):
    names = figures.store_names(engine, Filters(DAYS[0], DAYS[1], ("STORE0001",)))

    assert list(names) == [f"STORE000{n}" for n in range(1, 6)]
    assert all(names.values())


def test_the_data_version_changes_only_when_the_lake_does(lake, tmp_path):
    copy = tmp_path / "lake"
    shutil.copytree(lake[0] / "lake", copy / "lake")
    engine = LocalEngine(str(copy))
    first = engine.data_version()
    assert engine.data_version() == first

    day = next((copy / "lake" / "transactions").glob("dt=*"))
    shutil.copy(next(day.glob("*.parquet")), day / "late.parquet")

    assert engine.data_version() != first


def _per_day(page):
    return page.over_time.groupby(page.over_time["hour"].dt.date)["transactions"].sum().to_dict()


def test_kept_closed_days_give_the_same_figures_and_reread_the_open_day_at_once(lake, tmp_path):
    copy = tmp_path / "lake"
    shutil.copytree(lake[0] / "lake", copy / "lake")
    engine = LocalEngine(str(copy))
    seconds = [0.0]
    closed = figures.ClosedDays(recheck_seconds=60, monotonic=lambda: seconds[0])
    filters = Filters(*DAYS)

    def page():
        return figures.figures(engine, filters, NOW, closed, engine.data_version())

    first = page()
    plain = figures.figures(engine, filters, NOW)
    assert first.by_store.equals(plain.by_store) and first.sizes.equals(plain.sizes)
    assert first.top_by_units.equals(plain.top_by_units) and first.today == plain.today
    days = _per_day(first)

    # Given a file landing in the open day and a late one in a closed day:
    added = {}
    for day in (DAYS[1], DAYS[0]):
        folder = copy / "lake" / "transactions" / f"dt={day}"
        landed = next(folder.glob("*.parquet"))
        shutil.copy(landed, folder / "landed.parquet")
        added[day] = days[day] + len(pq.read_table(landed))

    # the open day is re-read at once, the closed one once the recheck is due.
    seconds[0] = 30
    assert _per_day(page()) == {**days, DAYS[1]: added[DAYS[1]]}
    seconds[0] = 61
    assert _per_day(page()) == {**days, **added}
