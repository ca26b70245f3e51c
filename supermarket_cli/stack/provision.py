"""What the stack creates in AWS (moto locally) before anything runs: the bucket with its
raw/incoming/ notification to the ingest queue and dead-letter queue, the Glue database and
tables from the generated definitions, and the alert topic. Every step is safe to run again."""

from dataclasses import dataclass

import boto3

from supermarket_cli.local_aws import provision_alert_topic, provision_ingest
from supermarket_cli.stack.config import StackConfig
from supermarket_queries.glue import create_catalog


@dataclass(frozen=True)
class Provisioned:
    queue_url: str
    dead_letter_url: str
    tables: list[str]
    alert_topic_arn: str


def provision(config: StackConfig) -> Provisioned:
    queues = provision_ingest(config.bucket, config.queue)
    tables = create_catalog(boto3.client("glue"), config.bucket, config.glue_database)
    return Provisioned(
        queue_url=queues.queue_url,
        dead_letter_url=queues.dead_letter_url,
        tables=tables,
        alert_topic_arn=provision_alert_topic(config.alert_topic),
    )


def queue_depth(queue_url: str) -> int:
    """Messages waiting or in flight: zero means the Lambda runtime has nothing left to do."""
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())
