"""The dashboard page, a Streamlit script: `supermarket dashboard` runs it.

The filters sit outside the refreshing part; the panels are one fragment that reruns every
REFRESH_SECONDS without reloading the page. Each rerun asks the engine for its data version (a
few listings) and recomputes the figures only when it changed or the filters did.
"""

import contextlib
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import streamlit as st

from lake_contract.stores import store_timezone
from supermarket_dashboard import charts, figures
from supermarket_dashboard.settings import (
    DEFAULT_RANGE_DAYS,
    ENGINE_MEMORY_LIMIT,
    ENGINE_THREADS,
    DashboardSettings,
)
from supermarket_queries.engine import LocalEngine

BADGE_COLORS = {"ok": "green", "warn": "orange", "fail": "red"}


@dataclass
class Lake:
    """One engine per process, shared by every browser session; DuckDB's connection runs one
    query at a time, so sessions take turns."""

    engine: LocalEngine
    lock: threading.Lock
    closed: figures.ClosedDays  # rows of the closed days, re-read only now and then


@st.cache_resource
def open_lake(lake: str, endpoint: str | None) -> Lake:
    engine = LocalEngine(lake, endpoint, memory_limit=ENGINE_MEMORY_LIMIT, threads=ENGINE_THREADS)
    return Lake(engine, threading.Lock(), figures.ClosedDays())


def data_version(lake: Lake) -> str:
    with lake.lock:
        return lake.engine.data_version()


@st.cache_data(max_entries=16, show_spinner=False)
def page_figures(
    _lake: Lake, version: str, filters: figures.Filters, today: str
) -> figures.Figures:
    """Keyed by data version, filters and the local day: the same figures are never computed
    twice, whichever session asks."""
    with _lake.lock:
        return figures.figures(_lake.engine, filters, datetime.now(UTC), _lake.closed, version)


@st.cache_data(max_entries=4, show_spinner=False)
def store_names(_lake: Lake, version: str, filters: figures.Filters) -> dict[str, str]:
    with _lake.lock:
        return figures.store_names(_lake.engine, filters)


def draw(chart: charts.Chart, key: str) -> None:
    st.vega_lite_chart(chart.data, chart.spec, width="stretch", key=key)


def money(value: object) -> str:
    return "-" if value is None else f"{charts.CURRENCY}{value:,.2f}"


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "no transaction has landed yet"
    if seconds < 120:
        return f"last transaction landed {seconds:.0f} s ago"
    return f"last transaction landed {seconds / 60:.0f} min ago"


def show_filters(lake: Lake, timezone: ZoneInfo, zone: str) -> figures.Filters:
    today = figures.local_today(datetime.now(UTC), timezone)
    first = today - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    # ?start=2026-01-24&end=2026-01-30 opens the page on that range (a link to share).
    with contextlib.suppress(ValueError):
        first = date.fromisoformat(st.query_params.get("start", first.isoformat()))
        today = date.fromisoformat(st.query_params.get("end", today.isoformat()))
    left, right = st.columns([1, 2])
    chosen = left.date_input(f"Dates ({zone})", value=(first, today), key="dates")
    start, end = (chosen[0], chosen[-1]) if chosen else (today, today)
    names = store_names(lake, data_version(lake), figures.Filters(start, end, (), timezone))
    stores = right.multiselect(
        "Stores",
        options=list(names),
        format_func=lambda store_id: f"{names[store_id]} ({store_id})",
        placeholder="All stores",
        key="stores",
    )
    return figures.Filters(start, end, tuple(sorted(stores)), timezone)


def show_tiles(page: figures.Figures, zone: str) -> None:
    today = page.today
    columns = st.columns(4)
    columns[0].metric("Today's sales", money(today.sales), border=True)
    columns[1].metric("Transactions today", f"{today.transactions:,}", border=True)
    columns[2].metric("Average basket", money(today.average_basket), border=True)
    items = "-" if today.items_per_basket is None else f"{today.items_per_basket:.1f}"
    columns[3].metric("Items per basket", items, border=True)


def show_status(page: figures.Figures, now: datetime, timezone: ZoneInfo, zone: str) -> None:
    fresh = page.freshness
    state = fresh.state(now)
    left, right = st.columns([3, 2])
    with left:
        st.badge(
            age_text(fresh.seconds_since_landed(now)),
            icon={"ok": ":material/check_circle:", "warn": ":material/schedule:"}.get(
                state, ":material/error:"
            ),
            color=BADGE_COLORS[state],
        )
        landed = fresh.latest_ingested_at
        if landed is not None:
            st.caption(f"at {landed.astimezone(timezone):%Y-%m-%d %H:%M:%S} ({zone})")
    with right:
        quarantined = page.quarantine.records
        st.badge(
            f"{quarantined:,} records quarantined",
            icon=":material/report:" if quarantined else ":material/verified:",
            color="red" if quarantined else "gray",
        )


@st.fragment(run_every=DashboardSettings.from_argv(sys.argv[1:]).refresh_seconds)
def panels(lake: Lake, filters: figures.Filters, zone: str) -> None:
    began = time.perf_counter()
    now = datetime.now(UTC)
    today = figures.local_today(now, filters.timezone).isoformat()
    version = data_version(lake)
    page = page_figures(lake, version, filters, today)
    show_status(page, now, filters.timezone, zone)
    show_tiles(page, zone)
    st.caption(f"Tiles: {today} in {zone}, for the stores chosen. Ranges below: "
               f"{filters.start} to {filters.end}.")  # fmt: skip

    left, right = st.columns(2)
    with left:
        st.subheader("Sales by store")
        draw(charts.sales_by_store(page.by_store), "by_store")
    with right:
        st.subheader(f"Sales over time, by hour ({zone})")
        draw(charts.sales_over_time(page.over_time, zone), "over_time")

    left, right = st.columns(2)
    with left:
        st.subheader("Top SKUs by revenue")
        draw(charts.top_skus(page.top_by_revenue, "revenue"), "top_revenue")
    with right:
        st.subheader("Top SKUs by units")
        draw(charts.top_skus(page.top_by_units, "units"), "top_units")

    left, right = st.columns(2)
    with left:
        st.subheader("Basket size")
        draw(charts.basket_sizes(page.sizes), "sizes")
    with right:
        st.subheader("Payment mix")
        draw(charts.payment_mix(page.mix), "mix")

    st.subheader("Quarantine: latest reasons")
    reasons = page.quarantine.latest_reasons.copy()
    if reasons.empty:
        st.caption("Nothing quarantined.")
    else:
        reasons["last_rejected_at"] = (
            reasons["last_rejected_at"].dt.tz_convert(filters.timezone).dt.tz_localize(None)
        )
        st.dataframe(
            reasons[["last_rejected_at", "reason", "records", "last_source_key"]],
            hide_index=True,
            width="stretch",
            column_config={
                "last_rejected_at": st.column_config.DatetimeColumn(
                    f"latest ({zone})", format="YYYY-MM-DD HH:mm:ss"
                ),
                "reason": "reason",
                "records": st.column_config.NumberColumn("records", format="%d"),
                "last_source_key": "latest source file",
            },
        )
    took = (time.perf_counter() - began) * 1000
    st.caption(f"Checked {now.astimezone(filters.timezone):%H:%M:%S} ({zone}) in {took:.0f} ms · "
               f"data version {version}")  # fmt: skip


def main() -> None:
    settings = DashboardSettings.from_argv(sys.argv[1:])
    st.set_page_config(page_title="Supermarket lake", page_icon=":material/storefront:",
                       layout="wide")  # fmt: skip
    timezone = store_timezone()
    zone = timezone.key
    st.title("Supermarket lake")
    st.caption(f"Reading {settings.lake} through the curated views · times in {zone}")
    lake = open_lake(settings.lake, settings.endpoint)
    filters = show_filters(lake, timezone, zone)
    panels(lake, filters, zone)


if __name__ == "__main__":  # `streamlit run` executes the script as __main__
    main()
