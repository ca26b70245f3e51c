"""Every entry point selects glibc's allocator for Arrow's C++ code too (lake_contract), before
anything loads pyarrow: the Parquet writer's own buffers never come from mimalloc. The processes
started from ours inherit it, and glibc's bound on arenas."""

import os
import subprocess
import sys

import pytest

from lake_contract import ARENAS_VARIABLE, ARROW_POOL_VARIABLE

# A Parquet write: the writer's buffers come from the pool the variable selected as pyarrow
# loaded, whatever pyarrow's Python default is. Prints the most mimalloc ever held.
_WRITE_AND_REPORT = (
    "import tempfile, pyarrow as pa, pyarrow.parquet as pq; "
    "rows = pa.table({'n': list(range(1_000_000))}); "
    "pq.write_table(rows, tempfile.mkdtemp() + '/rows.parquet'); "
    "print(pa.mimalloc_memory_pool().max_memory())"
)
ENTRIES = {
    "dagster": "import supermarket_dagster.definitions",  # the code server and its runs
    "lambda": "import lambda_ingest.handler",  # the ingest function
    # the `supermarket` command (the stack's supervisor, runtime and feed; convert; query)
    "supermarket": "import supermarket_cli.main; import supermarket_queries.engine",
}


def _mimalloc_peak(entry: str, env: dict[str, str]) -> int:
    done = subprocess.run([sys.executable, "-c", f"{ENTRIES[entry]}; {_WRITE_AND_REPORT}"],
                          env=env, capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("entry", ENTRIES)
def test_arrow_allocates_from_glibc_in_every_entry_point(entry):
    base = {k: v for k, v in os.environ.items() if k != ARROW_POOL_VARIABLE}
    assert _mimalloc_peak(entry, base) == 0
    # The probe sees mimalloc when it is used: a value set explicitly still wins.
    assert _mimalloc_peak(entry, {**base, ARROW_POOL_VARIABLE: "mimalloc"}) > 1_000_000


def test_processes_started_from_ours_inherit_the_allocator_settings():
    variables = (ARROW_POOL_VARIABLE, ARENAS_VARIABLE)
    base = {k: v for k, v in os.environ.items() if k not in variables}
    started = f"import os; print(*(os.environ.get(v) for v in {variables!r}))"
    ours = "import subprocess, sys, lake_contract; "
    ours += f"subprocess.run([sys.executable, '-c', {started!r}])"

    def started_sees(env: dict[str, str]) -> str:
        done = subprocess.run([sys.executable, "-c", ours], env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        return done.stdout.strip()

    assert started_sees(base) == "system 4"
    explicit = {**base, ARROW_POOL_VARIABLE: "jemalloc", ARENAS_VARIABLE: "2"}
    assert started_sees(explicit) == "jemalloc 2"  # values set explicitly are left as they are
