import boto3
import pytest
from dagster_aws.s3 import S3Resource
from moto import mock_aws

from lambda_ingest import lake_io
from supermarket_dagster.resources import LakeResource

BUCKET = "dagster-lake"


@pytest.fixture
def lake(monkeypatch):
    """A LakeResource on in-process moto, as the assets get it in a run."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        lake_io.s3_client.cache_clear()
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield LakeResource(bucket=BUCKET, s3=S3Resource(region_name="us-east-1"))
    lake_io.s3_client.cache_clear()
