"""The live tables' freshness policy: set on the assets (history), judged by Dagster's freshness
daemon, and followed by the alert sensor (live)."""

from datetime import timedelta

import dagster as dg

from lake_contract.freshness import FAIL_AFTER_SECONDS, WARN_AFTER_SECONDS

LIVE_TABLES = ("transactions", "transaction_items")
LIVE_WARN_WINDOW = timedelta(seconds=WARN_AFTER_SECONDS)
LIVE_FAIL_WINDOW = timedelta(seconds=FAIL_AFTER_SECONDS)
live_freshness_policy = dg.FreshnessPolicy.time_window(
    fail_window=LIVE_FAIL_WINDOW, warn_window=LIVE_WARN_WINDOW
)
