"""The reference domain: stores and SKUs."""

import dagster as dg

from supermarket_dagster.defs.reference import assets

defs = dg.Definitions(assets=dg.load_assets_from_modules([assets]))
