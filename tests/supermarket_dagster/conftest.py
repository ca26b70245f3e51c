import boto3
import pytest
from dagster_aws.s3 import S3Resource
from moto import mock_aws

from lambda_ingest import lake_io
from supermarket_dagster.resources import LakeResource
from tests.moto_server import use_test_aws

BUCKET = "dagster-lake"


@pytest.fixture
def lake(monkeypatch):
    """A LakeResource on in-process moto, as the assets get it in a run."""
    use_test_aws(monkeypatch)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield LakeResource(bucket=BUCKET, s3=S3Resource(region_name="us-east-1"))
    lake_io.s3_client.cache_clear()
