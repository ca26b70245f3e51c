import boto3
import pytest
from moto import mock_aws

from lake_contract import s3
from supermarket_dagster.resources import LakeResource
from tests.moto_server import use_test_aws

BUCKET = "dagster-lake"


@pytest.fixture
def lake(monkeypatch):
    """A LakeResource on in-process moto, as the assets get it in a run."""
    use_test_aws(monkeypatch)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield LakeResource(bucket=BUCKET)
    s3.aws_client.cache_clear()
