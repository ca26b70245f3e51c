"""The live domain: the Lambda's writes reported from the audit log, and the stalled-feed alert."""

import dagster as dg

from supermarket_dagster.defs.live import freshness, sensors

defs = dg.Definitions(sensors=[sensors.lake_audit_sensor, freshness.live_feed_freshness_sensor])
