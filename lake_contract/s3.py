"""The one way to reach S3: one client configuration (botocore's standard retry mode), and the
lake bucket's reads, writes, deletes and listings, used by every package.

The endpoint is boto3's default resolution: AWS_ENDPOINT_URL points it at a local stack (moto),
its absence at AWS.
"""

import contextlib
import functools
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import parse_timestamp

from lake_contract import layout

MAX_ATTEMPTS = 4  # botocore's attempts per call, and the reads of a body cut off mid-stream
MAX_CONNECTIONS = 32
BULK_WORKERS = 16  # moto and S3 answer requests in parallel: a few in flight hide the latency
DELETE_BATCH = 1_000  # S3's limit per DeleteObjects call

# Throttling and server-side faults are worth a retry; a missing object or a denied request
# is not (and retrying it would only delay the dead-letter queue).
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
    }
)


def _timestamp(value: Any) -> datetime:
    """A response's time as botocore gives it, but S3's ISO 8601 UTC times (`LastModified` of
    each listed key) read by the standard library: botocore's dateutil parse was ~36 us a key,
    a third of a day check that lists the day's raw logs and audit records (under cProfile)."""
    if isinstance(value, str) and value.endswith("Z"):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value)
    return parse_timestamp(value)


@functools.cache
def _session() -> boto3.session.Session:
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    return boto3.session.Session(botocore_session=core)


@functools.cache
def aws_client(service: str, endpoint_url: str | None = None) -> Any:
    """Created once per process (a Lambda container), service and endpoint, and shared by
    threads (boto3 clients are thread-safe); building one loads botocore's models, 0.05-0.5 s
    each. None is boto3's own resolution (AWS_ENDPOINT_URL, else AWS)."""
    config = Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        max_pool_connections=MAX_CONNECTIONS,
    )
    return _session().client(service, config=config, endpoint_url=endpoint_url)


def s3_client(endpoint_url: str | None = None) -> Any:
    return aws_client("s3", endpoint_url)


def is_missing(error: Exception) -> bool:
    return isinstance(error, ClientError) and error.response["Error"]["Code"] in (
        "NoSuchKey",
        "404",
    )


def is_transient(error: Exception) -> bool:
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error.response["Error"]["Code"] in _TRANSIENT_CODES or status >= 500
    return isinstance(error, BotoCoreError)  # connection, timeout, endpoint errors


class WriteRefused(PermissionError):
    """A write or delete outside the prefixes a LakeBucket was given, or of a key that is not a
    plain path: a bug to surface, never worth a retry."""


class ObjectTooLarge(Exception):
    """An object over the size a reader accepts; none of its body was read."""

    def __init__(self, url: str, size: int, limit: int) -> None:
        super().__init__(f"{url} is {size:,} bytes, over the {limit:,}-byte bound")
        self.size, self.limit = size, limit


@dataclass(frozen=True)
class StoredObject:
    """One object as a listing shows it."""

    key: str
    size: int
    last_modified: datetime
    etag: str


class LakeBucket:
    """One bucket of the lake, on the process's one S3 client.

    writable: the only prefixes it may write or delete under (the Lambda's bucket is given the
    lake's own, layout.OUTPUT_PREFIXES); None: anywhere.
    """

    def __init__(
        self, name: str, client: Any = None, writable: tuple[str, ...] | None = None
    ) -> None:
        if not name:
            raise ValueError("no bucket name (set LAKE_BUCKET)")
        self.name = name
        self._client = client
        self.writable = writable

    def _check_writable(self, key: str) -> None:
        if self.writable is None:
            return
        problem = layout.key_problem(key)
        if problem is None and not key.startswith(self.writable):
            problem = f"is outside {', '.join(self.writable)}"
        if problem:
            raise WriteRefused(f"refusing to write {self.url(key)!r}: the key {problem}")

    @property
    def client(self) -> Any:
        return self._client or s3_client()

    def url(self, key: str = "") -> str:
        return f"s3://{self.name}/{key}"

    def create(self) -> None:
        """Creates the bucket; nothing happens when this account already owns it."""
        region = self.client.meta.region_name
        # us-east-1 is the one region that refuses a location constraint.
        location = {} if region in (None, "us-east-1") else {
            "CreateBucketConfiguration": {"LocationConstraint": region}
        }  # fmt: skip
        with contextlib.suppress(self.client.exceptions.BucketAlreadyOwnedByYou):
            self.client.create_bucket(Bucket=self.name, **location)

    def read(self, key: str, max_bytes: int | None = None) -> bytes:
        """The object's body; over max_bytes, ObjectTooLarge before any of it is read.

        botocore retries a call, not the reading of its body: a body cut off mid-stream (a
        connection reset) is fetched again, up to MAX_ATTEMPTS times.
        """
        attempt = 1
        while True:
            response = self.client.get_object(Bucket=self.name, Key=key)
            body = response["Body"]
            if max_bytes is not None and response["ContentLength"] > max_bytes:
                body.close()
                raise ObjectTooLarge(self.url(key), response["ContentLength"], max_bytes)
            try:
                return body.read()
            except BotoCoreError:  # IncompleteReadError, ResponseStreamingError, ReadTimeoutError
                if attempt == MAX_ATTEMPTS:
                    raise
                attempt += 1

    def read_if_present(self, key: str, max_bytes: int | None = None) -> bytes | None:
        try:
            return self.read(key, max_bytes)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise

    def etag(self, key: str) -> str | None:
        """The object's ETag from a HEAD, None if there is no such object."""
        try:
            return self.client.head_object(Bucket=self.name, Key=key)["ETag"]
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise

    def read_many(self, keys: Iterable[str]) -> list[bytes]:
        """The bodies of `keys`, in their order, fetched concurrently."""
        return _concurrently(self.read, list(keys))

    def read_many_if_present(self, keys: Iterable[str]) -> list[bytes | None]:
        """read_many, with None for a key that is not there."""
        return _concurrently(self.read_if_present, list(keys))

    def write(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self._check_writable(key)
        self.client.put_object(Bucket=self.name, Key=key, Body=body, ContentType=content_type)

    def write_many(
        self, bodies: dict[str, bytes], content_type: str = "application/octet-stream"
    ) -> None:
        _concurrently(lambda item: self.write(*item, content_type), list(bodies.items()))

    def delete(self, key: str) -> None:
        self._check_writable(key)
        self.client.delete_object(Bucket=self.name, Key=key)

    def delete_many(self, keys: list[str]) -> None:
        for key in keys:
            self._check_writable(key)

        def delete(batch: list[str]) -> None:
            answer = self.client.delete_objects(
                Bucket=self.name,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            if answer.get("Errors"):
                raise RuntimeError(f"could not delete {answer['Errors'][:3]}")

        batches = [keys[i : i + DELETE_BATCH] for i in range(0, len(keys), DELETE_BATCH)]
        _concurrently(delete, batches)

    def pages(self, prefix: str, after: str = "") -> Iterator[list[StoredObject]]:
        """Objects under prefix strictly after `after`, in key order, a listing page (up to 1,000
        objects) at a time, so a caller can stop early."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.name, Prefix=prefix, StartAfter=after):
            yield [
                StoredObject(o["Key"], o["Size"], o["LastModified"], o["ETag"].strip('"'))
                for o in page.get("Contents", [])
            ]

    def listing(self, prefix: str, after: str = "", limit: int | None = None) -> list[StoredObject]:
        """Objects under prefix strictly after `after`, in key order, at most `limit`."""
        found: list[StoredObject] = []
        for page in self.pages(prefix, after):
            found += page
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found

    def keys(self, prefix: str, after: str = "", limit: int | None = None) -> list[str]:
        return [o.key for o in self.listing(prefix, after, limit)]

    def folders(self, prefix: str) -> list[str]:
        """The "folders" right under prefix (keys cut at the next '/'), in key order."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.name, Prefix=prefix, Delimiter="/")
        return [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]


def _concurrently(work: Any, items: list[Any]) -> list[Any]:
    if len(items) <= 1:
        return [work(item) for item in items]
    # A pool per call: bulk calls may nest inside other pools, where a shared pool could deadlock.
    with ThreadPoolExecutor(min(BULK_WORKERS, len(items)), thread_name_prefix="s3") as pool:
        return list(pool.map(work, items))
