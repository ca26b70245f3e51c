"""What every panel of the dashboard shows, from the curated views alone: engine in, figures out.

No Streamlit here and no SQL beyond the filters passed to `engine.view`, so the fast tests call
these functions directly. Times in the views are UTC; the filters are store-local days, turned
into UTC hours for the hourly view (exact) and into the UTC days they overlap for the daily
views (exact when the stores keep UTC, the default).
"""

import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa

from lake_contract.freshness import FAIL_AFTER_SECONDS, WARN_AFTER_SECONDS

TOP_SKUS = 10
LATEST_REASONS = 5
CENT = Decimal("0.01")
# Live files land in today's UTC partition, and for a while after midnight in yesterday's.
OPEN_DAY_GRACE = timedelta(hours=1)
CLOSED_RECHECK_SECONDS = 60.0
CLOSED_KEPT = 64
UTC_ZONE = ZoneInfo("UTC")


class Engine(Protocol):
    def view(self, name: str, where: str | None = None) -> pa.Table: ...


@dataclass(frozen=True)
class Filters:
    """A store-local date range (inclusive) and the stores to show (empty: every store)."""

    start: date
    end: date
    stores: tuple[str, ...] = ()
    timezone: ZoneInfo = UTC_ZONE

    def utc_hours(self) -> tuple[datetime, datetime]:
        """[first, last) as naive UTC instants, the way Athena's timestamps read."""
        first = datetime.combine(self.start, time(), self.timezone)
        last = datetime.combine(self.end + timedelta(days=1), time(), self.timezone)
        return _naive_utc(first), _naive_utc(last)

    def utc_days(self) -> tuple[date, date]:
        """The UTC partitions (dt) the range touches."""
        first, last = self.utc_hours()
        return first.date(), (last - timedelta(microseconds=1)).date()

    def _stores(self) -> str:
        quoted = ", ".join("'" + s.replace("'", "''") + "'" for s in self.stores)
        return f" AND store_id IN ({quoted})" if self.stores else ""

    def where_days(self) -> str:
        first, last = self.utc_days()
        return f"dt BETWEEN DATE '{first}' AND DATE '{last}'" + self._stores()

    def where_hours(self) -> str:
        first, last = self.utc_hours()
        return (
            f"{self.where_days()} AND hour >= TIMESTAMP '{first:%Y-%m-%d %H:%M:%S}' "
            f"AND hour < TIMESTAMP '{last:%Y-%m-%d %H:%M:%S}'"
        )


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def local_today(now: datetime, timezone: ZoneInfo) -> date:
    return now.astimezone(timezone).date()


# --- the views each figure reads, with the filters it passes --------------------------------


class ClosedDays:
    """View rows of the UTC days before the open one, kept between refreshes: only the open
    day takes live files, so a refresh re-reads only that day. A late file or a backfill into
    a closed day is read at the first refresh CLOSED_RECHECK_SECONDS after the last read."""

    def __init__(
        self,
        recheck_seconds: float = CLOSED_RECHECK_SECONDS,
        monotonic: Callable[[], float] = clock.monotonic,
    ) -> None:
        self._recheck = recheck_seconds
        self._monotonic = monotonic
        self._kept: dict[tuple[str, str], tuple[float, str, pa.Table]] = {}

    def view(self, engine: Engine, name: str, where: str, version: str) -> pa.Table:
        now = self._monotonic()
        kept = self._kept.get((name, where))
        if kept is not None and (kept[1] == version or now - kept[0] < self._recheck):
            return kept[2]
        rows = engine.view(name, where)
        self._kept.pop((name, where), None)
        self._kept[(name, where)] = (now, version, rows)
        while len(self._kept) > CLOSED_KEPT:
            self._kept.pop(next(iter(self._kept)))  # the oldest read
        return rows


@dataclass(frozen=True)
class Reader:
    """engine.view, or with closed days kept: the closed part from `closed`, the open part
    from the engine every time."""

    engine: Engine
    now: datetime
    closed: ClosedDays | None = None
    version: str = ""

    def view(self, name: str, where: str) -> pd.DataFrame:
        if self.closed is None:
            return self.engine.view(name, where).to_pandas()
        open_day = (self.now.astimezone(UTC) - OPEN_DAY_GRACE).date()
        kept = self.closed.view(
            self.engine, name, f"{where} AND dt < DATE '{open_day}'", self.version
        )
        live = self.engine.view(name, f"{where} AND dt >= DATE '{open_day}'")
        return pa.concat_tables([kept, live]).to_pandas()


def store_hours(reader: Reader, filters: Filters) -> pd.DataFrame:
    return reader.view("store_hourly_sales", filters.where_hours())


def store_baskets(reader: Reader, filters: Filters) -> pd.DataFrame:
    return reader.view("store_basket_size", filters.where_days())


def store_skus(reader: Reader, filters: Filters) -> pd.DataFrame:
    return reader.view("store_top_skus", filters.where_days())


# --- figures from view rows -----------------------------------------------------------------


@dataclass(frozen=True)
class Tiles:
    sales: Decimal
    transactions: int
    average_basket: Decimal | None  # sales per transaction
    items_per_basket: float | None  # lines per basket: the log's `items`


def tiles(hours: pd.DataFrame, baskets: pd.DataFrame) -> Tiles:
    sales = Decimal(sum(hours["revenue"], Decimal(0)))
    count = int(hours["transactions"].sum())
    baskets_total = int(baskets["baskets"].sum())
    lines = int((baskets["basket_lines"] * baskets["baskets"]).sum())
    return Tiles(
        sales=sales,
        transactions=count,
        average_basket=(sales / count).quantize(CENT) if count else None,
        items_per_basket=lines / baskets_total if baskets_total else None,
    )


def sales_by_store(hours: pd.DataFrame) -> pd.DataFrame:
    """store_id, store_name, transactions, revenue: biggest first."""
    per_store = hours.groupby(["store_id", "store_name"], as_index=False, dropna=False).agg(
        transactions=("transactions", "sum"), revenue=("revenue", _money_sum)
    )
    return per_store.sort_values(
        ["revenue", "store_id"], ascending=[False, True], ignore_index=True
    )


def sales_over_time(hours: pd.DataFrame, timezone: ZoneInfo) -> pd.DataFrame:
    """hour (store-local, tz-aware), transactions, revenue: one row per hour with sales."""
    per_hour = hours.groupby("hour", as_index=False).agg(
        transactions=("transactions", "sum"), revenue=("revenue", _money_sum)
    )
    per_hour["hour"] = (
        pd.to_datetime(per_hour["hour"]).dt.tz_localize("UTC").dt.tz_convert(timezone)
    )
    return per_hour.sort_values("hour", ignore_index=True)


def payment_mix(hours: pd.DataFrame) -> pd.DataFrame:
    """payment_method, transactions, revenue, share of the transactions: most used first."""
    mix = hours.groupby("payment_method", as_index=False).agg(
        transactions=("transactions", "sum"), revenue=("revenue", _money_sum)
    )
    total = mix["transactions"].sum()
    mix["share"] = mix["transactions"] / total if total else 0.0
    return mix.sort_values(
        ["transactions", "payment_method"], ascending=[False, True], ignore_index=True
    )


def top_skus(skus: pd.DataFrame, by: str, n: int = TOP_SKUS) -> pd.DataFrame:
    """The n SKUs with most `by` ("revenue" or "units") over the rows' days and stores."""
    per_sku = skus.groupby(
        ["sku_id", "product_name", "category"], as_index=False, dropna=False
    ).agg(units=("units", "sum"), revenue=("revenue", _money_sum))
    return per_sku.sort_values([by, "sku_id"], ascending=[False, True], ignore_index=True).head(n)


def basket_sizes(baskets: pd.DataFrame) -> pd.DataFrame:
    """basket_lines, baskets: how many baskets had 1, 2, 3 ... lines."""
    sizes = baskets.groupby("basket_lines", as_index=False).agg(baskets=("baskets", "sum"))
    return sizes.sort_values("basket_lines", ignore_index=True)


def _money_sum(values: pd.Series) -> Decimal:
    return sum(values, Decimal(0))


# --- freshness and quarantine ---------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    latest_ingested_at: datetime | None  # UTC, aware
    latest_transaction_at: datetime | None

    def seconds_since_landed(self, now: datetime) -> float | None:
        if self.latest_ingested_at is None:
            return None
        return max(0.0, (now - self.latest_ingested_at).total_seconds())

    def state(self, now: datetime) -> str:
        """ok, warn or fail, with the same windows as Dagster's freshness policy."""
        age = self.seconds_since_landed(now)
        if age is None or age >= FAIL_AFTER_SECONDS:
            return "fail"
        return "warn" if age >= WARN_AFTER_SECONDS else "ok"


def freshness(engine: Engine) -> Freshness:
    (row,) = engine.view("freshness").to_pylist()

    def aware(moment: datetime | None) -> datetime | None:
        return None if moment is None else moment.replace(tzinfo=UTC)

    return Freshness(aware(row["latest_ingested_at"]), aware(row["latest_transaction_at"]))


@dataclass(frozen=True)
class Quarantine:
    records: int
    latest_reasons: pd.DataFrame  # reason, records, last_rejected_at, last_source_key


def quarantine(engine: Engine, n: int = LATEST_REASONS) -> Quarantine:
    reasons = engine.view("quarantine_reasons").to_pandas()
    latest = reasons.sort_values(
        ["last_rejected_at", "records"], ascending=[False, False], na_position="last"
    ).head(n)
    return Quarantine(int(reasons["records"].sum()), latest.reset_index(drop=True))


# --- the whole page -------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    filters: Filters
    today: Tiles
    by_store: pd.DataFrame
    over_time: pd.DataFrame
    mix: pd.DataFrame
    top_by_revenue: pd.DataFrame
    top_by_units: pd.DataFrame
    sizes: pd.DataFrame
    freshness: Freshness
    quarantine: Quarantine


def today_filters(filters: Filters, now: datetime) -> Filters:
    """The tiles' filters: the chosen stores, today in the stores' time zone."""
    today = local_today(now, filters.timezone)
    return Filters(today, today, filters.stores, filters.timezone)


def figures(
    engine: Engine,
    filters: Filters,
    now: datetime,
    closed: ClosedDays | None = None,
    version: str = "",
) -> Figures:
    """Every panel's figures for one set of filters; with `closed`, the days before the open
    one come from it (kept at data version `version`)."""
    reader = Reader(engine, now, closed, version)
    today = today_filters(filters, now)
    hours = store_hours(reader, filters)
    baskets = store_baskets(reader, filters)
    skus = store_skus(reader, filters)
    return Figures(
        filters=filters,
        today=tiles(store_hours(reader, today), store_baskets(reader, today)),
        by_store=sales_by_store(hours),
        over_time=sales_over_time(hours, filters.timezone),
        mix=payment_mix(hours),
        top_by_revenue=top_skus(skus, "revenue"),
        top_by_units=top_skus(skus, "units"),
        sizes=basket_sizes(baskets),
        freshness=freshness(engine),
        quarantine=quarantine(engine),
    )


def store_names(engine: Engine, filters: Filters) -> dict[str, str]:
    """store_id -> store_name of the stores that sold in the range, for the store filter."""
    every_store = Filters(filters.start, filters.end, (), filters.timezone)
    rows = engine.view("daily_sales_by_store", every_store.where_days()).to_pandas()
    names = rows.drop_duplicates("store_id").sort_values("store_id")
    return dict(zip(names["store_id"], names["store_name"].fillna(names["store_id"]), strict=True))
