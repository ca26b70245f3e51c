"""The lake's contract: the tables' schema, the key layout, money, the Parquet options, the audit
and quarantine records, and the one S3 layer. Every package uses it; it uses nothing of ours.
Shipped inside the Lambda package, so it imports only the standard library, boto3 and pyarrow.

Importing it (it is cheap: this module loads no pyarrow) selects Arrow's allocator, so every
entry point imports it before anything loads pyarrow.
"""

import os
import sys

# The pool Arrow allocates from, read once as pyarrow loads: by its C++ code (the Parquet
# writer's buffers, file streams) as well as its Python calls. glibc's runs the post-parse
# kernels 2-3x faster than pyarrow's default, mimalloc (benchmarks/foundation.py), and on
# mimalloc each thread's segments stayed resident: the backfill's run worker peaked 0.06-0.11
# GiB higher (benchmarks/backfill.py). Processes started from ours inherit it; a value set
# explicitly still wins.
ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
os.environ.setdefault(ARROW_POOL_VARIABLE, "system")
if "pyarrow" in sys.modules and os.environ[ARROW_POOL_VARIABLE] == "system":
    # Loaded before us, on its own default: its Python calls at least use glibc's.
    _pyarrow = sys.modules["pyarrow"]
    _pyarrow.set_memory_pool(_pyarrow.system_memory_pool())

# glibc gives a thread that finds the arenas busy one of its own, up to 8 a core, and keeps in
# each what freed buffers leave. The backfill's run worker (~10 threads: converting, writing,
# Arrow's IO pool) peaked at 0.69-0.70 GiB with 4 arenas against 0.81-0.86 GiB with the
# default, no slower that the runs could show (README, "10M on one allocator"). glibc reads it
# as a process starts: it applies to the processes started from ours.
ARENAS_VARIABLE = "MALLOC_ARENA_MAX"
os.environ.setdefault(ARENAS_VARIABLE, "4")
