"""Reference data and history loaded through Dagster itself, over its GraphQL API: a run of the
reference assets, then a backfill of the history days, both visible in the UI as any other.

What was loaded is remembered in the state folder (loaded.json), so a kept lake is topped up
with the days it lacks (a day has passed) instead of being loaded again.
"""

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supermarket_cli.stack.config import StackConfig, history_days, loading_params

REFERENCE_ASSETS = ["supermarkets", "skus"]
# The rollup too: in the same run it costs 0.2 s a day; left to its automation, a run per day.
HISTORY_ASSETS = ["raw_history_logs", "transactions", "transaction_items", "sku_daily_sales"]
RUN_TIMEOUT = 600.0


def reference_run_config(config: StackConfig) -> dict[str, Any]:
    settings = {"stores": config.stores, "skus": config.skus, "seed": config.seed}
    return {"ops": {name: {"config": settings} for name in REFERENCE_ASSETS}}


def history_run_config(config: StackConfig) -> dict[str, Any]:
    settings = {
        "transactions_per_day": config.history_per_day,
        "seed": config.seed,
        "stores": config.stores,
        "skus": config.skus,
    }
    return {"ops": {"raw_history_logs": {"config": settings}}}


def _loaded(marker: Path, params: dict[str, Any]) -> set[str]:
    """Days already in the kept lake with these parameters (none if they changed)."""
    try:
        state = json.loads(marker.read_text())
    except (OSError, ValueError):
        return set()
    return set(state.get("days", [])) if state.get("params") == params else set()


def history_start(config: StackConfig, marker: Path) -> str:
    """HISTORY_START for the stack's Dagster: the first day it loads, or an older day the kept
    lake holds, so the UI shows exactly the days that can have data."""
    try:
        kept = json.loads(marker.read_text()).get("days", [])
    except (OSError, ValueError):
        kept = []
    return min([*history_days(config), *kept])


def load_through_dagster(
    url: str,
    config: StackConfig,
    marker: Path,
    report: Callable[[str], None],
    stop: threading.Event,
) -> None:
    from supermarket_cli.dagster_graphql import DagsterGraphQL

    params = loading_params(config)
    done = _loaded(marker, params)
    days = [d for d in history_days(config) if d not in done]
    if done and not days:
        report("reference data and history kept from the last run")
        return
    dagster = DagsterGraphQL(url)
    dagster.wait_ready(120)
    # Both at once: the history does not read the reference tables (it draws the same seeded
    # catalogue). The reference run is queued first, so it has written the two small tables
    # long before the backfill's checks look up store and SKU ids in them.
    run_id = None
    if not done:
        run_id = dagster.launch_assets(REFERENCE_ASSETS, reference_run_config(config))
        report(f"loading reference data: run {run_id} ({url}/runs/{run_id})")
    backfill_id = None
    if days:
        backfill_id = dagster.launch_backfill(
            HISTORY_ASSETS, days, run_config=history_run_config(config)
        )
        report(
            f"loading history: backfill {backfill_id} of {len(days)} days "
            f"{days[0]}..{days[-1]} ({url}/runs/b/{backfill_id})"
        )
    if run_id:
        dagster.wait_run(run_id, RUN_TIMEOUT)
        report(f"reference data loaded: {config.stores} stores, {config.skus} SKUs")
    if backfill_id and not stop.is_set():
        dagster.wait_backfill(backfill_id, RUN_TIMEOUT, lambda p: report(f"  {p.line()}"))
    marker.write_text(json.dumps({"params": params, "days": sorted(done | set(days))}))
