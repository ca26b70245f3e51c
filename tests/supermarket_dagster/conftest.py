import pytest

from supermarket_dagster.resources import LakeResource
from tests.moto_server import iceberg_lake

BUCKET = "dagster-lake"


@pytest.fixture
def lake(monkeypatch):
    """A LakeResource on a moto server holding the bucket and the Iceberg tables, as the assets
    get it in a run."""
    with iceberg_lake(monkeypatch, BUCKET):
        yield LakeResource(bucket=BUCKET)
