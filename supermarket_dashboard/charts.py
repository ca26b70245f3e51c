"""The dashboard's charts: Vega-Lite specs (what Streamlit draws with) from the figures' frames,
money as money.

Plain spec dicts for `st.vega_lite_chart`, not Altair objects: importing Altair costs the page's
process ~37 MiB (its Vega-Lite schema) and validating six charts on every rerun ~20-60 ms, for
specs that never change shape.
"""

from dataclasses import dataclass
from typing import Any

import pandas as pd

CURRENCY = "$"
MONEY_AXIS = "$,.0f"
MONEY_TIP = "$,.2f"
HEIGHT = 260

Spec = dict[str, Any]


@dataclass(frozen=True)
class Chart:
    data: pd.DataFrame
    spec: Spec  # Vega-Lite, without its data


def _floats(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Decimals for the chart to draw; the figures themselves stay exact."""
    frame = frame.copy()
    for column in columns:
        frame[column] = frame[column].astype(float)
    return frame


def _chart(data: pd.DataFrame, mark: Spec, **encoding: Any) -> Chart:
    return Chart(data, {"mark": mark, "encoding": encoding, "height": HEIGHT})


def _field(name: str, kind: str, **more: Any) -> Spec:
    return {"field": name, "type": kind, **more}


def _empty(message: str) -> Chart:
    return _chart(
        pd.DataFrame({"text": [message]}),
        {"type": "text", "size": 14, "color": "gray"},
        text=_field("text", "nominal"),
    )


def sales_by_store(by_store: pd.DataFrame) -> Chart:
    if by_store.empty:
        return _empty("no sales in the range")
    frame = _floats(by_store, "revenue")
    frame["store"] = frame["store_name"].fillna(frame["store_id"])
    return _chart(
        frame,
        {"type": "bar"},
        x=_field("revenue", "quantitative", title="sales", axis={"format": MONEY_AXIS}),
        y=_field("store", "nominal", sort="-x", title=None, axis={"labelLimit": 220}),
        tooltip=[
            _field("store", "nominal"),
            _field("store_id", "nominal"),
            _field("revenue", "quantitative", title="sales", format=MONEY_TIP),
            _field("transactions", "quantitative", format=","),
        ],
    )


def sales_over_time(over_time: pd.DataFrame, zone: str) -> Chart:
    if over_time.empty:
        return _empty("no sales in the range")
    frame = _floats(over_time, "revenue")
    # Store-local wall-clock hours as epoch ms on a UTC scale: the browser's own zone never
    # shifts them.
    wall = frame["hour"].dt.tz_localize(None)
    frame["local_hour"] = (wall - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)
    frame = frame.drop(columns="hour")
    title = f"hour ({zone})"
    return _chart(
        frame,
        {"type": "bar", "width": {"band": 0.9}},
        x=_field(
            "local_hour",
            "temporal",
            title=title,
            scale={"type": "utc"},
            axis={"format": "%b %d %H:%M", "labelAngle": 0, "tickCount": 6},
        ),
        y=_field("revenue", "quantitative", title="sales", axis={"format": MONEY_AXIS}),
        tooltip=[
            _field(
                "local_hour",
                "temporal",
                title=title,
                timeUnit="utcyearmonthdatehours",
                format="%Y-%m-%d %H:00",
            ),
            _field("revenue", "quantitative", title="sales", format=MONEY_TIP),
            _field("transactions", "quantitative", format=","),
        ],
    )


def top_skus(top: pd.DataFrame, by: str) -> Chart:
    if top.empty:
        return _empty("no sales in the range")
    frame = _floats(top, "revenue")
    frame["product"] = frame["product_name"].fillna(frame["sku_id"])
    axis = {"format": MONEY_AXIS if by == "revenue" else ",.0f"}
    return _chart(
        frame,
        {"type": "bar", "color": "#2e7d32" if by == "revenue" else "#1565c0"},
        x=_field(by, "quantitative", title="sales" if by == "revenue" else "units", axis=axis),
        y=_field(
            "product",
            "nominal",
            sort="-x",
            title=None,
            axis={"labelLimit": 260, "labelOverlap": False},
        ),
        tooltip=[
            _field("product", "nominal"),
            _field("sku_id", "nominal"),
            _field("category", "nominal"),
            _field("revenue", "quantitative", title="sales", format=MONEY_TIP),
            _field("units", "quantitative", format=","),
        ],
    )


def basket_sizes(sizes: pd.DataFrame) -> Chart:
    if sizes.empty:
        return _empty("no baskets in the range")
    return _chart(
        sizes,
        {"type": "bar"},
        x=_field("basket_lines", "ordinal", title="items in the basket", axis={"labelAngle": 0}),
        y=_field("baskets", "quantitative", title="baskets", axis={"format": ",.0f"}),
        tooltip=[
            _field("basket_lines", "ordinal", title="items"),
            _field("baskets", "quantitative", format=","),
        ],
    )


def payment_mix(mix: pd.DataFrame) -> Chart:
    if mix.empty:
        return _empty("no sales in the range")
    frame = _floats(mix, "revenue")
    return _chart(
        frame,
        {"type": "arc", "innerRadius": 60},
        theta=_field("transactions", "quantitative"),
        color=_field("payment_method", "nominal", title="payment method"),
        tooltip=[
            _field("payment_method", "nominal", title="payment method"),
            _field("share", "quantitative", title="share of transactions", format=".1%"),
            _field("transactions", "quantitative", format=","),
            _field("revenue", "quantitative", title="sales", format=MONEY_TIP),
        ],
    )
