"""A process whose environment asks for it goes without pandas, and pyarrow still works."""

import os
import subprocess
import sys

import pytest

from lake_contract.pandas_free import WITHOUT_PANDAS_VARIABLE

_REPORT = "print('pandas' if 'pandas' in sys.modules else 'no pandas')"
ENTRIES = {
    # Dagster's code server and runs: the domains' package applies the environment's choice
    "dagster": "import sys, pyarrow as pa, pyarrow.compute as pc; import supermarket_dagster.defs; "
    "t = pa.table({'n': pa.array([1, 2, 3])}); assert pc.sum(t['n']).as_py() == 6; " + _REPORT,
    # the Lambda function: its handler module applies it (the template sets the variable)
    "lambda": "import sys, pyarrow as pa; import lambda_ingest.handler; "
    "assert pa.array([1, 2, 3]).to_pylist() == [1, 2, 3]; " + _REPORT,
    # the `supermarket` command (the stack's runtime, feed and supervisor): its main() applies it
    "supermarket": "import sys, tempfile; from supermarket_cli.main import main; "
    "main(['generate', 'reference', '--out', tempfile.mkdtemp(), '--skus', '20']); " + _REPORT,
}


@pytest.mark.parametrize("entry", ENTRIES)
def test_pyarrow_goes_without_pandas_where_the_environment_says_so(entry):
    base = {k: v for k, v in os.environ.items() if k != WITHOUT_PANDAS_VARIABLE}

    def probe(env: dict[str, str]) -> str:
        done = subprocess.run([sys.executable, "-c", ENTRIES[entry]], env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        return done.stdout.strip().splitlines()[-1]

    assert probe(base) == "pandas"  # pyarrow imports it to build an array from a list
    assert probe({**base, WITHOUT_PANDAS_VARIABLE: "1"}) == "no pandas"
