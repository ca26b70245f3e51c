"""The dashboard's charts: Altair (Vega-Lite) specs from the figures' frames, money as money."""

import altair as alt
import pandas as pd

CURRENCY = "$"
MONEY_AXIS = "$,.0f"
MONEY_TIP = "$,.2f"
HEIGHT = 260


def _floats(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Decimals for the chart to draw; the figures themselves stay exact."""
    frame = frame.copy()
    for column in columns:
        frame[column] = frame[column].astype(float)
    return frame


def _empty(message: str) -> alt.Chart:
    return (
        alt.Chart(pd.DataFrame({"text": [message]}))
        .mark_text(size=14, color="gray")
        .encode(text="text:N")
        .properties(height=HEIGHT)
    )


def sales_by_store(by_store: pd.DataFrame) -> alt.Chart:
    if by_store.empty:
        return _empty("no sales in the range")
    frame = _floats(by_store, "revenue")
    frame["store"] = frame["store_name"].fillna(frame["store_id"])
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("revenue:Q", title="sales", axis=alt.Axis(format=MONEY_AXIS)),
            y=alt.Y("store:N", sort="-x", title=None, axis=alt.Axis(labelLimit=220)),
            tooltip=[
                alt.Tooltip("store:N"),
                alt.Tooltip("store_id:N"),
                alt.Tooltip("revenue:Q", title="sales", format=MONEY_TIP),
                alt.Tooltip("transactions:Q", format=","),
            ],
        )
        .properties(height=HEIGHT)
    )


def sales_over_time(over_time: pd.DataFrame, zone: str) -> alt.Chart:
    if over_time.empty:
        return _empty("no sales in the range")
    frame = _floats(over_time, "revenue")
    # Store-local wall-clock hours as epoch ms on a UTC scale: the browser's own zone never
    # shifts them.
    wall = frame["hour"].dt.tz_localize(None)
    frame["local_hour"] = (wall - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)
    return (
        alt.Chart(frame)
        .mark_bar(width={"band": 0.9})
        .encode(
            x=alt.X(
                "local_hour:T",
                title=f"hour ({zone})",
                scale=alt.Scale(type="utc"),
                axis=alt.Axis(format="%b %d %H:%M", labelAngle=0, tickCount=6),
            ),
            y=alt.Y("revenue:Q", title="sales", axis=alt.Axis(format=MONEY_AXIS)),
            tooltip=[
                alt.Tooltip(
                    "local_hour:T",
                    title=f"hour ({zone})",
                    timeUnit="utcyearmonthdatehours",
                    format="%Y-%m-%d %H:00",
                ),
                alt.Tooltip("revenue:Q", title="sales", format=MONEY_TIP),
                alt.Tooltip("transactions:Q", format=","),
            ],
        )
        .properties(height=HEIGHT)
    )


def top_skus(top: pd.DataFrame, by: str) -> alt.Chart:
    if top.empty:
        return _empty("no sales in the range")
    frame = _floats(top, "revenue")
    frame["product"] = frame["product_name"].fillna(frame["sku_id"])
    axis = alt.Axis(format=MONEY_AXIS) if by == "revenue" else alt.Axis(format=",.0f")
    return (
        alt.Chart(frame)
        .mark_bar(color="#2e7d32" if by == "revenue" else "#1565c0")
        .encode(
            x=alt.X(f"{by}:Q", title="sales" if by == "revenue" else "units", axis=axis),
            y=alt.Y(
                "product:N",
                sort="-x",
                title=None,
                axis=alt.Axis(labelLimit=260, labelOverlap=False),
            ),
            tooltip=[
                alt.Tooltip("product:N"),
                alt.Tooltip("sku_id:N"),
                alt.Tooltip("category:N"),
                alt.Tooltip("revenue:Q", title="sales", format=MONEY_TIP),
                alt.Tooltip("units:Q", format=","),
            ],
        )
        .properties(height=HEIGHT)
    )


def basket_sizes(sizes: pd.DataFrame) -> alt.Chart:
    if sizes.empty:
        return _empty("no baskets in the range")
    return (
        alt.Chart(sizes)
        .mark_bar()
        .encode(
            x=alt.X("basket_lines:O", title="items in the basket", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("baskets:Q", title="baskets", axis=alt.Axis(format=",.0f")),
            tooltip=[
                alt.Tooltip("basket_lines:O", title="items"),
                alt.Tooltip("baskets:Q", format=","),
            ],
        )
        .properties(height=HEIGHT)
    )


def payment_mix(mix: pd.DataFrame) -> alt.Chart:
    if mix.empty:
        return _empty("no sales in the range")
    frame = _floats(mix, "revenue")
    return (
        alt.Chart(frame)
        .mark_arc(innerRadius=60)
        .encode(
            theta=alt.Theta("transactions:Q"),
            color=alt.Color("payment_method:N", title="payment method"),
            tooltip=[
                alt.Tooltip("payment_method:N", title="payment method"),
                alt.Tooltip("share:Q", title="share of transactions", format=".1%"),
                alt.Tooltip("transactions:Q", format=","),
                alt.Tooltip("revenue:Q", title="sales", format=MONEY_TIP),
            ],
        )
        .properties(height=HEIGHT)
    )
