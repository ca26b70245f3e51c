"""The one Definitions of the platform; workspace.yaml points here."""

import dagster as dg

from supermarket_dagster.defs.history import assets as history
from supermarket_dagster.defs.live.sensors import lake_audit_sensor
from supermarket_dagster.defs.reference import assets as reference
from supermarket_dagster.defs.sales import assets as sales
from supermarket_dagster.defs.sales.sensors import sales_automation_sensor
from supermarket_dagster.resources import lake_from_environment

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([reference, history, sales]),
    sensors=[lake_audit_sensor, sales_automation_sensor],
    resources={"lake": lake_from_environment()},
)
