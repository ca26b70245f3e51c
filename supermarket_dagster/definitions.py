"""The one Definitions of the platform; workspace.yaml points here."""

import dagster as dg

from supermarket_dagster.defs.history import assets as history
from supermarket_dagster.defs.history.checks import fact_table_checks_sensor, fact_table_day_checks
from supermarket_dagster.defs.live.freshness import live_feed_freshness_sensor
from supermarket_dagster.defs.live.sensors import lake_audit_sensor
from supermarket_dagster.defs.maintenance import assets as maintenance
from supermarket_dagster.defs.maintenance.checks import compaction_kept_every_row
from supermarket_dagster.defs.maintenance.schedules import compaction_job, nightly_compaction
from supermarket_dagster.defs.maintenance.sensors import late_files_sensor
from supermarket_dagster.defs.reference import assets as reference
from supermarket_dagster.defs.sales import assets as sales
from supermarket_dagster.defs.sales.sensors import sales_automation_sensor
from supermarket_dagster.resources import alerts_from_environment, lake_from_environment

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([reference, history, maintenance, sales]),
    asset_checks=[fact_table_day_checks, compaction_kept_every_row],
    sensors=[
        lake_audit_sensor,
        live_feed_freshness_sensor,
        fact_table_checks_sensor,
        late_files_sensor,
        sales_automation_sensor,
    ],
    jobs=[compaction_job],
    schedules=[nightly_compaction],
    resources={"lake": lake_from_environment(), "alerts": alerts_from_environment()},
    # One process per run, not one per step: on two cores a step process costs seconds of
    # imports and ~250 MB, and a run's steps depend on each other anyway.
    executor=dg.in_process_executor,
)
