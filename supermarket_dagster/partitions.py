"""The fact tables are daily: one partition per UTC day, from the start of history to today
included. Shared by every domain whose assets or checks are per day (history, live,
maintenance, sales), with the policy that backfills a range of them in few runs.

Both settings are read when the code location loads, because a partitions definition and a
backfill policy are part of the definitions themselves (no EnvVar can defer them):

- HISTORY_START (YYYY-MM-DD): the first day partition; default: simulator.defaults'
  default_history_start, the first of the demo's 30 days (`supermarket up` sets it to the first
  day its lake holds, so a kept lake keeps its older days).
- HISTORY_DAYS_PER_RUN: most days a backfill puts in one run (default
  DEFAULT_HISTORY_DAYS_PER_RUN); each run converts its days on every core.
"""

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime

import dagster as dg

from simulator.defaults import DEFAULT_HISTORY_DAYS_PER_RUN, default_history_start

HISTORY_START_VARIABLE = "HISTORY_START"
DAYS_PER_RUN_VARIABLE = "HISTORY_DAYS_PER_RUN"


def history_start(environ: Mapping[str, str] = os.environ, today: date | None = None) -> date:
    """The first day partition: HISTORY_START, else its default."""
    raw = environ.get(HISTORY_START_VARIABLE, "").strip()
    if not raw:
        return default_history_start(today or datetime.now(UTC).date())
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{HISTORY_START_VARIABLE}={raw!r}: expected a day, YYYY-MM-DD") from None


def days_per_run(environ: Mapping[str, str] = os.environ) -> int:
    """Most days of a backfill in one run: HISTORY_DAYS_PER_RUN, else its default."""
    raw = environ.get(DAYS_PER_RUN_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_HISTORY_DAYS_PER_RUN
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{DAYS_PER_RUN_VARIABLE}={raw!r}: expected a whole number of days >= 1")
    return int(raw)


# end_offset=1: today is a partition too, because the live feed writes into it.
day_partitions = dg.DailyPartitionsDefinition(
    start_date=history_start().isoformat(), timezone="UTC", end_offset=1
)

# A range of days is one run (or a few): a run costs a process start and a code location load,
# ~4 s here, against ~10 ms of converting one demo day.
days_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=days_per_run())


def latest_materialization(
    instance: dg.DagsterInstance, asset: dg.AssetKey, day: str
) -> dg.EventLogRecord | None:
    """The day partition's latest materialization of the asset; None if it has none."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[day]), limit=1
    ).records
    return records[0] if records else None
