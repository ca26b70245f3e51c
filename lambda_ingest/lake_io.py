"""The handler's only contact with S3: one client, reads, writes, and what counts as transient."""

import functools
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

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


@functools.cache
def s3_client() -> Any:
    """Created once per process (a Lambda container), from boto3's default configuration:
    AWS_ENDPOINT_URL points it at a local stack, its absence at AWS."""
    config = Config(retries={"mode": "standard", "max_attempts": 4}, max_pool_connections=32)
    return boto3.client("s3", config=config)


def read_object(bucket: str, key: str) -> bytes:
    return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()


def write_object(bucket: str, key: str, body: bytes, content_type: str) -> None:
    s3_client().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def delete_object(bucket: str, key: str) -> None:
    s3_client().delete_object(Bucket=bucket, Key=key)


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
