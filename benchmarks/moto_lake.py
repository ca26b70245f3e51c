"""The lake on a moto server of its own, for the benchmarks that land through the Lambda's code."""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from supermarket_cli.stack.children import moto_server


@contextlib.contextmanager
def moto_lake(bucket: str) -> Iterator[str]:
    """moto on loopback as its own process with this process's AWS settings pointed at it, a
    commit lock for the committers, and the bucket with the Iceberg tables in it; yields moto's
    endpoint."""
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as work:
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1",
                          AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")  # fmt: skip
        os.environ.pop("LAKE_BUCKET", None)
        from lake_contract import tables
        from lake_contract.s3 import LakeBucket

        # moto's Glue cannot refuse a stale commit: the committers take turns, as in the stack.
        os.environ[tables.COMMIT_LOCK_VARIABLE] = str(Path(work) / "commit.lock")
        LakeBucket(bucket).create()
        tables.create_tables(tables.glue_catalog(), f"s3://{bucket}")
        yield endpoint
