"""The sales domain: daily rollups read by the curated views, and their automation."""

import dagster as dg

from supermarket_dagster.defs.sales import assets, sensors

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([assets]), sensors=[sensors.sales_automation_sensor]
)
