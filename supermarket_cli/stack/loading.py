"""Reference data and history loaded through Dagster itself, over its GraphQL API: a run of the
reference assets, and the history days in range runs (a month in one), all visible in the UI
as any other run, the day partitions materialized by them.

What was loaded is remembered in the state folder (loaded.json), so a kept lake is topped up
with the days it lacks (a day has passed) instead of being loaded again.
"""

import json
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supermarket_cli.dagster_graphql import FINISHED_RUN, RANGE_END_TAG, RANGE_START_TAG
from supermarket_cli.stack.config import StackConfig, history_days, loading_params

if TYPE_CHECKING:
    from supermarket_cli.dagster_graphql import DagsterGraphQL

REFERENCE_ASSETS = ["supermarkets", "skus"]
# The rollup too: in the same run it costs 0.2 s a day; left to its automation, a run per day.
HISTORY_ASSETS = ["raw_history_logs", "transactions", "transaction_items", "sku_daily_sales"]
RUN_TIMEOUT = 600.0
# The steps of a history run whose LANDED_DAY lines count its days landed, then rolled up.
LANDED_STEP, ROLLUP_STEP = "history_backfill", "sku_daily_sales"


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
    loaded: Callable[[], None] = lambda: None,
) -> None:
    """Loads what the kept lake lacks; calls loaded once the data is in (the reference tables,
    and every history day landed and rolled up), then waits for the history runs' day checks,
    which follow the rollup in the same runs, and reports them."""
    from supermarket_cli.dagster_graphql import DagsterGraphQL

    params = loading_params(config)
    done = _loaded(marker, params)
    days = [d for d in history_days(config) if d not in done]
    if done and not days:
        report("reference data and history kept from the last run")
        loaded()
        return
    dagster = DagsterGraphQL(url)
    dagster.wait_ready(120)
    # Both at once: the history does not read the reference tables (it draws the same seeded
    # catalogue, which takes as long as the whole reference run). The reference run is queued
    # first, so it has written the two small tables before the history's checks look up store
    # and SKU ids in them.
    run_id = None
    if not done:
        run_id = dagster.launch_assets(REFERENCE_ASSETS, reference_run_config(config))
        report(f"loading reference data: run {run_id} ({url}/runs/{run_id})")
    history_runs = launch_history(dagster, days, config) if days else []
    for first, last, history_run in history_runs:
        report(f"loading history {first}..{last}: run {history_run} ({url}/runs/{history_run})")
    if run_id:
        dagster.wait_run(run_id, RUN_TIMEOUT)
        report(f"reference data loaded: {config.stores} stores, {config.skus} SKUs")

    def landed() -> None:
        marker.write_text(json.dumps({"params": params, "days": sorted(done | set(days))}))
        loaded()

    if not history_runs or stop.is_set():
        landed()
        return
    wait_history(dagster, [r for _, _, r in history_runs], len(days), report, landed)


def day_ranges(days: list[str], per_run: int) -> list[tuple[str, str]]:
    """Consecutive days cut into ranges of at most per_run days, as the history assets'
    BackfillPolicy cuts a backfill (a gap in the days starts a new range)."""
    ranges: list[list[str]] = []
    for day in sorted(days):
        previous = ranges[-1][-1] if ranges else None
        follows = previous is not None and date.fromisoformat(day) - date.fromisoformat(
            previous
        ) == timedelta(days=1)
        if follows and len(ranges[-1]) < per_run:
            ranges[-1].append(day)
        else:
            ranges.append([day])
    return [(r[0], r[-1]) for r in ranges]


def launch_history(
    dagster: "DagsterGraphQL", days: list[str], config: StackConfig
) -> list[tuple[str, str, str]]:
    """The history's range runs, as a backfill with the assets' BackfillPolicy makes them, but
    launched straight to the run queue: the daemon's backfill loop would first wait for its next
    tick (2 s here, supermarket_cli.dagster_daemon). (first day, last day, run id) of each."""
    return [
        (first, last, dagster.launch_assets(
            HISTORY_ASSETS, history_run_config(config),
            tags={RANGE_START_TAG: first, RANGE_END_TAG: last, "supermarket/load": "history"},
            with_checks=True,  # the day checks, as a backfill of the days runs them
        ))
        for first, last in day_ranges(days, config.history_days_per_run)
    ]  # fmt: skip


def wait_history(
    dagster: "DagsterGraphQL",
    run_ids: list[str],
    days: int,
    report: Callable[[str], None],
    landed: Callable[[], None] = lambda: None,
) -> None:
    """Waits for the history runs, reporting the days landed and rolled up as each run commits
    them. Calls landed once every day is rolled up (the rollup runs before the day checks, see
    sku_daily_sales), then reports the day checks when the runs finish."""
    shown = None
    pending = set(run_ids)
    progress: dict[str, dict[str, list[str]]] = {run_id: {} for run_id in run_ids}
    began = time.monotonic()
    called = False
    while pending:
        for run_id in sorted(pending):
            status = dagster.run(run_id)["status"]
            if status in FINISHED_RUN:
                dagster.wait_run(run_id, 0)  # raises with the run's own error if it failed
                pending.discard(run_id)
            if status in FINISHED_RUN or status == "STARTED":
                progress[run_id] = dagster.landed_days_by_step(run_id)
        stored, rolled = (
            sum(len(set(steps.get(step, []))) for steps in progress.values())
            for step in (LANDED_STEP, ROLLUP_STEP)
        )
        done = len(run_ids) - len(pending)
        line = (f"history: {stored}/{days} days landed, {rolled}/{days} rolled up, "
                f"{done}/{len(run_ids)} runs finished")  # fmt: skip
        if line != shown:
            report(f"  [{time.monotonic() - began:4.0f}s] {line}")
            shown = line
        if not called and (rolled >= days or not pending):
            called = True
            landed()
        if time.monotonic() - began > RUN_TIMEOUT:
            raise TimeoutError(f"history not loaded after {RUN_TIMEOUT:.0f} s: {line}")
        if pending:
            time.sleep(0.5)
    results = [r for run_id in run_ids for r in dagster.run_check_results(run_id)]
    failed = sorted({f"{r.asset_key} {r.check_name} dt={r.partition}" for r in results
                     if not r.passed})  # fmt: skip
    summary = f"history day checks: {len(results) - len(failed)} of {len(results)} passed"
    if failed:
        summary += f"; failed: {', '.join(failed[:5])}" + (" ..." if len(failed) > 5 else "")
    report(summary)
