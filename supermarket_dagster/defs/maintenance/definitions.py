"""The maintenance domain: compaction of closed days, its check, schedule and sensor."""

import dagster as dg

from supermarket_dagster.defs.maintenance import assets, checks, schedules, sensors

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([assets]),
    asset_checks=dg.load_asset_checks_from_modules([checks]),
    jobs=[schedules.compaction_job],
    schedules=[schedules.nightly_compaction],
    sensors=[sensors.late_files_sensor],
)
