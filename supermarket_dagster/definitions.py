"""The one Definitions of the platform (workspace.yaml points here): each domain's own
Definitions under defs/, merged, with the resources and the executor they all share."""

import dagster as dg

from supermarket_dagster.defs.history import definitions as history
from supermarket_dagster.defs.live import definitions as live
from supermarket_dagster.defs.maintenance import definitions as maintenance
from supermarket_dagster.defs.reference import definitions as reference
from supermarket_dagster.defs.sales import definitions as sales
from supermarket_dagster.resources import alerts_from_environment, lake_from_environment

# Domains are imported as modules: Dagster allows one Definitions object at this module's scope.
defs = dg.Definitions.merge(
    reference.defs,
    history.defs,
    live.defs,
    maintenance.defs,
    sales.defs,
    dg.Definitions(
        resources={"lake": lake_from_environment(), "alerts": alerts_from_environment()},
        # One process per run, not one per step: on two cores a step process costs seconds of
        # imports and ~250 MB, and a run's steps depend on each other anyway.
        executor=dg.in_process_executor,
    ),
)
