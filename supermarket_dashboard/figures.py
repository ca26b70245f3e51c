"""What every panel of the dashboard shows, from the curated views alone: engine in, figures out.

No Streamlit here and no SQL beyond the filters passed to `engine.view`, so the fast tests call
these functions directly. Times in the views are UTC; the filters are store-local days, turned
into UTC hours for the hourly view (exact) and into the UTC days they overlap for the daily
views (exact when the stores keep UTC, the default).
"""

import time as clock
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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

    def covers(self, other: "Filters") -> bool:
        """Whether every row `other` selects is among this one's."""
        same = (self.stores, self.timezone) == (other.stores, other.timezone)
        return same and self.start <= other.start and other.end <= self.end

    def days_of(self, rows: pa.Table) -> pa.Table:
        """The rows (with a dt) this filter's days select, as where_days() would."""
        first, last = self.utc_days()
        dt = rows["dt"]
        return rows.filter(pc.and_(pc.greater_equal(dt, first), pc.less_equal(dt, last)))

    def hours_of(self, rows: pa.Table) -> pa.Table:
        """The rows (with an hour) this filter's hours select, as where_hours() would."""
        first, last = (pa.scalar(moment, rows["hour"].type) for moment in self.utc_hours())
        hour = rows["hour"]
        return rows.filter(pc.and_(pc.greater_equal(hour, first), pc.less(hour, last)))

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

# A view's rows cut down to what its panels use; sums only, so reduced parts sum again exactly.
Reduce = Callable[[pa.Table], pa.Table]


def summed(rows: pa.Table, keys: Sequence[str], sums: Sequence[str]) -> pa.Table:
    """`sums` per distinct `keys`, in Arrow: decimals stay exact, nothing becomes a Python
    object (a pandas groupby summing Decimals took 0.9 s on the 10M lake's SKU rows)."""
    grouped = rows.group_by(list(keys), use_threads=False).aggregate([(c, "sum") for c in sums])
    return grouped.select([*keys, *(f"{c}_sum" for c in sums)]).rename_columns([*keys, *sums])


def as_is(rows: pa.Table) -> pa.Table:
    return rows


class ClosedDays:
    """View rows of the UTC days before the open one, kept (reduced) between refreshes: only
    the open day takes live files, so a refresh re-reads only that day. A late file or a
    backfill into a closed day is read at the first refresh CLOSED_RECHECK_SECONDS after the
    last read."""

    def __init__(
        self,
        recheck_seconds: float = CLOSED_RECHECK_SECONDS,
        monotonic: Callable[[], float] = clock.monotonic,
    ) -> None:
        self._recheck = recheck_seconds
        self._monotonic = monotonic
        self._kept: dict[tuple[str, str, Reduce], tuple[float, str, pa.Table]] = {}

    def view(
        self, engine: Engine, name: str, where: str, version: str, reduce: Reduce = as_is
    ) -> pa.Table:
        now = self._monotonic()
        key = (name, where, reduce)
        kept = self._kept.get(key)
        if kept is not None and (kept[1] == version or now - kept[0] < self._recheck):
            return kept[2]
        rows = reduce(engine.view(name, where))
        self._kept.pop(key, None)
        self._kept[key] = (now, version, rows)
        while len(self._kept) > CLOSED_KEPT:
            self._kept.pop(next(iter(self._kept)))  # the oldest read
        return rows


@dataclass(frozen=True)
class Reader:
    """engine.view, or with closed days kept: the closed part from `closed`, the open part
    from the engine every time. Rows come back as Arrow, reduced by `reduce`."""

    engine: Engine
    now: datetime
    closed: ClosedDays | None = None
    version: str = ""

    def view(self, name: str, where: str, reduce: Reduce = as_is) -> pa.Table:
        if self.closed is None:
            return reduce(self.engine.view(name, where))
        open_day = (self.now.astimezone(UTC) - OPEN_DAY_GRACE).date()
        kept = self.closed.view(
            self.engine, name, f"{where} AND dt < DATE '{open_day}'", self.version, reduce
        )
        live = reduce(self.engine.view(name, f"{where} AND dt >= DATE '{open_day}'"))
        return reduce(pa.concat_tables([kept, live]))


def per_sku(rows: pa.Table) -> pa.Table:
    return summed(rows, ["sku_id", "product_name", "category"], ["units", "revenue"])


def per_basket_size(rows: pa.Table) -> pa.Table:
    return summed(rows, ["dt", "basket_lines"], ["baskets"])


def store_hours(reader: Reader, filters: Filters) -> pa.Table:
    return reader.view("store_hourly_sales", filters.where_hours())


def store_baskets(reader: Reader, filters: Filters) -> pa.Table:
    return reader.view("store_basket_size", filters.where_days(), per_basket_size)


def store_skus(reader: Reader, filters: Filters) -> pa.Table:
    return reader.view("store_top_skus", filters.where_days(), per_sku)


# --- figures from view rows: summed in Arrow, only the rows shown become pandas ------------


@dataclass(frozen=True)
class Tiles:
    sales: Decimal
    transactions: int
    average_basket: Decimal | None  # sales per transaction
    items_per_basket: float | None  # lines per basket: the log's `items`


def _total(column: pa.ChunkedArray) -> Any:
    return pc.sum(column).as_py() or 0


def tiles(hours: pa.Table, baskets: pa.Table) -> Tiles:
    sales = Decimal(_total(hours["revenue"]))
    count = int(_total(hours["transactions"]))
    baskets_total = int(_total(baskets["baskets"]))
    lines = int(_total(pc.multiply(baskets["basket_lines"].cast(pa.int64()), baskets["baskets"])))
    return Tiles(
        sales=sales,
        transactions=count,
        average_basket=(sales / count).quantize(CENT) if count else None,
        items_per_basket=lines / baskets_total if baskets_total else None,
    )


def _sorted(rows: pa.Table, *order: tuple[str, str]) -> pd.DataFrame:
    return rows.sort_by(list(order)).to_pandas()


def sales_by_store(hours: pa.Table) -> pd.DataFrame:
    """store_id, store_name, transactions, revenue: biggest first."""
    per_store = summed(hours, ["store_id", "store_name"], ["transactions", "revenue"])
    return _sorted(per_store, ("revenue", "descending"), ("store_id", "ascending"))


def sales_over_time(hours: pa.Table, timezone: ZoneInfo) -> pd.DataFrame:
    """hour (store-local, tz-aware), transactions, revenue: one row per hour with sales."""
    per_hour = _sorted(summed(hours, ["hour"], ["transactions", "revenue"]), ("hour", "ascending"))
    per_hour["hour"] = (
        pd.to_datetime(per_hour["hour"]).dt.tz_localize("UTC").dt.tz_convert(timezone)
    )
    return per_hour


def payment_mix(hours: pa.Table) -> pd.DataFrame:
    """payment_method, transactions, revenue, share of the transactions: most used first."""
    mix = _sorted(
        summed(hours, ["payment_method"], ["transactions", "revenue"]),
        ("transactions", "descending"),
        ("payment_method", "ascending"),
    )
    total = mix["transactions"].sum()
    mix["share"] = mix["transactions"] / total if total else 0.0
    return mix


def top_skus(skus: pa.Table, by: str, n: int = TOP_SKUS) -> pd.DataFrame:
    """The n SKUs with most `by` ("revenue" or "units") over the rows' days and stores."""
    ranked = per_sku(skus).sort_by([(by, "descending"), ("sku_id", "ascending")])
    return ranked.slice(0, n).to_pandas()


def basket_sizes(baskets: pa.Table) -> pd.DataFrame:
    """basket_lines, baskets: how many baskets had 1, 2, 3 ... lines."""
    sizes = summed(baskets, ["basket_lines"], ["baskets"])
    return _sorted(sizes, ("basket_lines", "ascending"))


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
    if filters.covers(today):  # the tiles' rows are among the range's: no second read
        today_tiles = tiles(today.hours_of(hours), today.days_of(baskets))
    else:
        today_tiles = tiles(store_hours(reader, today), store_baskets(reader, today))
    return Figures(
        filters=filters,
        today=today_tiles,
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
