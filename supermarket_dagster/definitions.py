"""The one Definitions of the platform; workspace.yaml points here."""

import dagster as dg

from supermarket_dagster.defs.history import assets as history
from supermarket_dagster.defs.history.checks import fact_table_checks_sensor, fact_table_day_checks
from supermarket_dagster.defs.live.freshness import live_feed_freshness_sensor
from supermarket_dagster.defs.live.sensors import lake_audit_sensor
from supermarket_dagster.defs.reference import assets as reference
from supermarket_dagster.resources import alerts_from_environment, lake_from_environment

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([reference, history]),
    asset_checks=[fact_table_day_checks],
    sensors=[lake_audit_sensor, live_feed_freshness_sensor, fact_table_checks_sensor],
    resources={"lake": lake_from_environment(), "alerts": alerts_from_environment()},
)
