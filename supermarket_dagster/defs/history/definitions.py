"""The history domain: raw logs, the Glue-equivalent backfill, and the per-day checks."""

import dagster as dg

from supermarket_dagster.defs.history import assets, checks

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([assets]),
    asset_checks=dg.load_asset_checks_from_modules([checks]),
    jobs=[assets.reingest_history_days],
    sensors=[checks.fact_table_checks_sensor],
)
