"""The lake's contract: the tables' schema, the key layout, money, the Parquet options, the audit
and quarantine records, and the one S3 layer. Every package uses it; it uses nothing of ours.
Shipped inside the Lambda package, so it imports only the standard library, boto3 and pyarrow.
"""

import os

import pyarrow as pa

# glibc's allocator runs the post-parse kernels 2-3x faster than pyarrow's default mimalloc on
# this workload (benchmarks/foundation.py); an explicit ARROW_DEFAULT_MEMORY_POOL still wins.
if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
    pa.set_memory_pool(pa.system_memory_pool())
