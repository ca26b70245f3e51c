"""Processes of the lake that never use pandas leave it unimported.

pyarrow imports pandas, when it is installed, the first time it builds an array from Python
objects, only to ask whether they are a pandas Series: ~0.25 s of CPU and ~50 MiB in every
process that does (measured here, its bytecode cached), and only the dashboard uses pandas. A
process whose environment sets WITHOUT_PANDAS_VARIABLE to 1 refuses the import before anything
has made it, and pyarrow then goes without. `supermarket up` sets it for itself and every child
but the dashboard: the Lambda runtime, the feed, Dagster's code server and the runs it starts;
start_dagster for every Dagster stack (the soak's, the benchmarks' and the tests' too). The
template sets it for the ingest function, whose pandas layer would otherwise be imported on
every cold start, and for the Dagster and feed tasks.
"""

import importlib.abc
import os
import sys
from collections.abc import Mapping, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

WITHOUT_PANDAS_VARIABLE = "SUPERMARKET_WITHOUT_PANDAS"


class _PandasRefused(importlib.abc.MetaPathFinder):
    """Finds no pandas: `import pandas` fails as if it were not installed. (A None in
    sys.modules would not do: pyarrow's compiled import takes it as the module.)"""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(
                f"pandas is left out of this process ({WITHOUT_PANDAS_VARIABLE}=1)", name=name
            )
        return None


def leave_pandas_out(environ: Mapping[str, str] = os.environ) -> bool:
    """Refuses pandas to this process when its environment asks for it and nothing has imported
    pandas yet; True if it did (or had already)."""
    if environ.get(WITHOUT_PANDAS_VARIABLE) != "1" or "pandas" in sys.modules:
        return False
    if not any(isinstance(finder, _PandasRefused) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PandasRefused())
    return True
