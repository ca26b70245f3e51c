"""Where generated objects go: a local folder or an s3:// URL, addressed by lake key."""

import os
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse


class Sink(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def describe(self, key: str) -> str: ...


class LocalSink:
    """Files under a root folder; each appears whole (written aside, then renamed)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as f:
            f.write(data)
        os.replace(f.name, path)

    def describe(self, key: str) -> str:
        return str(self.root / key)


class S3Sink:
    """Objects under s3://bucket/prefix; the endpoint comes from AWS_ENDPOINT_URL when set."""

    def __init__(self, bucket: str, prefix: str) -> None:
        # Only when writing to S3: keeps local runs free of boto3's import.
        from lake_contract.s3 import LakeBucket

        self.bucket, self.prefix = LakeBucket(bucket), prefix

    def put(self, key: str, data: bytes) -> None:
        self.bucket.write(self.prefix + key, data)

    def describe(self, key: str) -> str:
        return self.bucket.url(self.prefix + key)


def open_sink(location: str) -> Sink:
    """A local folder path, or s3://bucket[/prefix]."""
    if location.startswith("s3://"):
        url = urlparse(location)
        if not url.netloc:
            raise ValueError(f"no bucket in {location!r}: expected s3://bucket[/prefix]")
        prefix = url.path.lstrip("/")
        return S3Sink(url.netloc, prefix + "/" if prefix and not prefix.endswith("/") else prefix)
    return LocalSink(Path(location))
