"""The lake as a Dagster resource: a bucket reached through dagster-aws's S3 resource; and the
SNS topic alerts are published to."""

from typing import Any

import boto3
import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from lake_contract.stores import DEFAULT_STORE_TIMEZONE


class LakeResource(dg.ConfigurableResource):
    """The lake bucket. Its S3 client resolves the endpoint as boto3 does: AWS_ENDPOINT_URL
    points it at the local stack, its absence at AWS."""

    bucket: str
    s3: dg.ResourceDependency[S3Resource]
    # Building a client loads botocore's models: 0.05-0.5 s each, so one per resource.
    _s3_client: Any = PrivateAttr(default=None)

    def client(self) -> Any:
        """The resource's one S3 client (thread-safe), built on first use."""
        if self._s3_client is None:
            self._s3_client = self.s3.get_client()
        return self._s3_client

    def write(self, key: str, body: bytes) -> None:
        self.client().put_object(Bucket=self.bucket, Key=key, Body=body)

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def list_keys(self, prefix: str, after: str = "", limit: int | None = None) -> list[str]:
        """Keys under prefix in key order, strictly after `after`, at most `limit` of them."""
        paginator = self.client().get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, StartAfter=after):
            keys += [o["Key"] for o in page.get("Contents", [])]
            if limit is not None and len(keys) >= limit:
                return keys[:limit]
        return keys


def lake_from_environment() -> LakeResource:
    """Bucket from LAKE_BUCKET, resolved when a run launches, not at import."""
    return LakeResource(bucket=dg.EnvVar("LAKE_BUCKET"), s3=S3Resource())


class AlertsResource(dg.ConfigurableResource):
    """The SNS topic that alerts go to. Its client resolves the endpoint as boto3 does:
    AWS_ENDPOINT_URL points it at the local stack, its absence at AWS."""

    topic_arn: str
    # Alerts open only while stores trade (HH:MM-HH:MM, store_timezone); the local feed is 24/7.
    store_hours: str = "00:00-24:00"
    store_timezone: str = DEFAULT_STORE_TIMEZONE  # the dashboard reads the same setting

    def publish(self, subject: str, message: str) -> str:
        """Publishes one message; returns its SNS message id. SNS caps a subject at 100 chars."""
        response = boto3.client("sns").publish(
            TopicArn=self.topic_arn, Subject=subject[:100], Message=message
        )
        return response["MessageId"]


def alerts_from_environment() -> AlertsResource:
    """Topic from ALERT_TOPIC_ARN, resolved when the sensor ticks, not at import."""
    return AlertsResource(topic_arn=dg.EnvVar("ALERT_TOPIC_ARN"))
