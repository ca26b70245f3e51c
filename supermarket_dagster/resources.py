"""The lake as a Dagster resource, and the SNS topic alerts are published to."""

import boto3
import dagster as dg
from pydantic import PrivateAttr

from lake_contract import tables
from lake_contract.s3 import LakeBucket
from lake_contract.stores import DEFAULT_STORE_TIMEZONE
from lake_contract.tables import LakeTables


class LakeResource(dg.ConfigurableResource):
    """The lake: its bucket, reached through the project's one S3 layer (lake_contract.s3), and
    its Iceberg tables in the Glue catalog. Both resolve the endpoint as boto3 does:
    AWS_ENDPOINT_URL for the local stack, else AWS."""

    bucket: str
    database: str | None = None  # None: GLUE_DATABASE, else supermarket_lake
    _objects: LakeBucket | None = PrivateAttr(default=None)
    _tables: LakeTables | None = PrivateAttr(default=None)

    def objects(self) -> LakeBucket:
        """The bucket's objects: reads, writes, deletes and listings (thread-safe)."""
        if self._objects is None:
            self._objects = LakeBucket(self.bucket)
        return self._objects

    @property
    def glue_database(self) -> str:
        return self.database or tables.database_from_environment()

    def tables(self) -> LakeTables:
        """The Iceberg tables, loaded once and refreshed before each commit."""
        if self._tables is None:
            self._tables = LakeTables(tables.glue_catalog(), self.glue_database)
        return self._tables


def lake_from_environment() -> LakeResource:
    """Bucket from LAKE_BUCKET, resolved when a run launches, not at import."""
    return LakeResource(bucket=dg.EnvVar("LAKE_BUCKET"))


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
