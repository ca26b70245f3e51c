"""The automation sensor that runs the sales rollups' automation conditions."""

import dagster as dg

# Dagster's implicit default automation sensor starts stopped; this one is on from the start.
sales_automation_sensor = dg.AutomationConditionSensorDefinition(
    "sales_automation_sensor",
    target=dg.AssetSelection.groups("sales"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
