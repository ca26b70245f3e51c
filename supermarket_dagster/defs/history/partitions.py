"""History is daily: one partition per UTC day, up to yesterday."""

import dagster as dg

HISTORY_START = "2025-01-01"

history_partitions = dg.DailyPartitionsDefinition(start_date=HISTORY_START, timezone="UTC")
