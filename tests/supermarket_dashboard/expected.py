"""Dashboard figures computed straight from the generated JSON logs, independently of the lake,
the views and the dashboard's own code."""

import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

UTC_ZONE = ZoneInfo("UTC")


def transactions(raw: Path) -> list[dict]:
    found = []
    for path in sorted(raw.rglob("*.ndjson")):
        for line in path.read_text().splitlines():
            t = json.loads(line, parse_float=Decimal)
            if "items" not in t:
                continue
            t["at"] = datetime.fromisoformat(t["transaction_datetime"]).astimezone(UTC)
            t["total"] = sum(i["quantity"] * i["unit_price"] for i in t["items"])
            found.append(t)
    return found


def chosen(found, start: date, end: date, stores=(), zone=UTC_ZONE):
    """The transactions of the store-local days start..end in the given stores."""
    return [
        t
        for t in found
        if start <= t["at"].astimezone(zone).date() <= end
        and (not stores or t["store_id"] in stores)
    ]


def on_utc_days(found, start: date, end: date, stores=()):
    return [
        t
        for t in found
        if start <= t["at"].date() <= end and (not stores or t["store_id"] in stores)
    ]


def tiles(selected):
    sales = sum((t["total"] for t in selected), Decimal(0))
    lines = sum(len(t["items"]) for t in selected)
    n = len(selected)
    return sales, n, (sales / n).quantize(Decimal("0.01")), lines / n


def by_store(selected):
    figures = defaultdict(lambda: [0, Decimal(0)])
    for t in selected:
        figures[t["store_id"]][0] += 1
        figures[t["store_id"]][1] += t["total"]
    return {k: tuple(v) for k, v in figures.items()}


def by_local_hour(selected, zone):
    figures = Counter()
    for t in selected:
        local = t["at"].astimezone(zone).replace(minute=0, second=0, microsecond=0)
        figures[local] += 1
    return dict(figures)


def payment_mix(selected):
    return dict(Counter(t["payment_method"] for t in selected))


def per_sku(selected):
    units, revenue = Counter(), defaultdict(Decimal)
    for t in selected:
        for i in t["items"]:
            units[i["sku_id"]] += i["quantity"]
            revenue[i["sku_id"]] += i["quantity"] * i["unit_price"]
    return units, revenue


def top(figures, n):
    """The n keys with the highest figure, ties broken by key, as the dashboard breaks them."""
    return [k for k, _ in sorted(figures.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def basket_sizes(selected):
    return dict(Counter(len(t["items"]) for t in selected))
