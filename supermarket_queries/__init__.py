"""Querying the lake: Glue/Athena table definitions, curated views in Athena SQL, local engine."""
