"""The code location's processes take Arrow's buffers from jemalloc, unless their environment
chose a pool."""

import os
import subprocess
import sys

PROBE = (
    "import pyarrow as pa; import supermarket_dagster.defs; "
    "kept = pa.array(range(1_000_000), pa.int64()); "
    "print(pa.default_memory_pool().backend_name, pa.jemalloc_memory_pool().bytes_allocated())"
)


def _probe(env: dict[str, str]) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          check=True)  # fmt: skip
    pool, allocated = done.stdout.split()
    return pool, int(allocated)


def test_the_code_location_takes_arrow_buffers_from_jemalloc_unless_the_environment_chose():
    base = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}

    pool, allocated = _probe(base)
    assert pool == "jemalloc" and allocated >= 8_000_000  # the array's 8 MB are jemalloc's

    pool, allocated = _probe({**base, "ARROW_DEFAULT_MEMORY_POOL": "system"})
    assert pool == "system" and allocated < 8_000_000
