"""The fact tables are daily: one partition per UTC day, today included. Shared by every domain
whose assets or checks are per day (history, live, maintenance, sales)."""

import dagster as dg

HISTORY_START = "2025-01-01"

# end_offset=1: today is a partition too, because the live feed writes into it.
day_partitions = dg.DailyPartitionsDefinition(
    start_date=HISTORY_START, timezone="UTC", end_offset=1
)
