"""The maintenance domain: compaction of every day (the open one too) with its check, snapshot
expiry and orphan removal, their schedules, and the late-files sensor."""

import dagster as dg

from supermarket_dagster.defs.maintenance import assets, checks, schedules, sensors

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([assets]),
    asset_checks=dg.load_asset_checks_from_modules([checks]),
    jobs=[schedules.compaction_job, schedules.housekeeping_job],
    schedules=[
        schedules.open_day_compaction,
        schedules.nightly_compaction,
        schedules.hourly_housekeeping,
    ],
    sensors=[sensors.late_files_sensor],
)
