"""The ingest core: schema, transform, lake layout, Lambda handler. Stdlib, boto3, pyarrow only."""

import os

import pyarrow as pa

# glibc's allocator runs the post-parse kernels 2-3x faster than pyarrow's default mimalloc on
# this workload (benchmarks/foundation.py); an explicit ARROW_DEFAULT_MEMORY_POOL still wins.
if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
    pa.set_memory_pool(pa.system_memory_pool())
