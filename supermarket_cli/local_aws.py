"""The ingest wiring on an embedded AWS (moto): bucket, queue with dead-letter queue, the
raw/incoming/ -> queue notification, and the alert topic. The same calls create them in a real
account."""

import json
from dataclasses import dataclass
from typing import Any

import boto3

from lake_contract import layout
from lake_contract.s3 import LakeBucket
from supermarket_cli.defaults import (
    DEFAULT_ALERT_TOPIC,
    DEFAULT_QUEUE,
    DEFAULT_VISIBILITY_TIMEOUT,
)


@dataclass(frozen=True)
class IngestQueues:
    queue_url: str
    queue_arn: str
    dead_letter_url: str


def _arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def provision_ingest(
    bucket: str,
    queue_name: str = DEFAULT_QUEUE,
    max_receive_count: int = 3,
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT,
) -> IngestQueues:
    """Creates (or finds) the bucket, the queues and the notification; safe to run again."""
    lake, sqs = LakeBucket(bucket), boto3.client("sqs")
    lake.create()
    dead_letter_url = sqs.create_queue(QueueName=f"{queue_name}-dlq")["QueueUrl"]
    redrive = {
        "deadLetterTargetArn": _arn(sqs, dead_letter_url),
        "maxReceiveCount": max_receive_count,
    }
    attributes = {
        "RedrivePolicy": json.dumps(redrive),
        "VisibilityTimeout": str(visibility_timeout),
    }
    try:
        queue_url = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
    except sqs.exceptions.QueueNameExists:  # provisioned before with other settings
        queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=attributes)
    queue_arn = _arn(sqs, queue_url)
    # Only raw/incoming/: the handler's own writes (lake/, quarantine/, audit/) never notify.
    lake.client.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {"FilterRules": [{"Name": "prefix", "Value": layout.RAW_INCOMING}]}
                    },
                }
            ]
        },
    )
    return IngestQueues(queue_url, queue_arn, dead_letter_url)


def provision_alert_topic(name: str = DEFAULT_ALERT_TOPIC) -> str:
    """Creates (or finds) the SNS topic that Dagster publishes alerts to; returns its ARN.

    SNS's CreateTopic returns the existing topic's ARN when the name is taken: safe to run again.
    """
    return boto3.client("sns").create_topic(Name=name)["TopicArn"]
