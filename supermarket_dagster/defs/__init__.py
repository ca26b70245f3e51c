"""The domains of the one Definitions, a folder each.

Imported by every process that loads the definitions (the code server, the runs it starts) and
by none of Dagster's others (the webserver and the daemon import only the event log storage).
"""

from lake_contract.pandas_free import leave_pandas_out

# Before any domain module: those processes use Arrow only (see lake_contract.pandas_free).
leave_pandas_out()
