"""Dagster models, backfills and watches the lake: `definitions.defs` is the one Definitions."""
