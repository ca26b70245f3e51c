"""Dagster models, backfills and watches the lake: `definitions.defs` is the one Definitions."""

from lake_contract.pandas_free import leave_pandas_out

# Before any module of the package: the code server and the runs it starts use Arrow only.
leave_pandas_out()
