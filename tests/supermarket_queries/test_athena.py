import boto3
import pytest
import requests
from moto import mock_aws

from supermarket_queries.athena import AthenaEngine
from supermarket_queries.views import UnknownView


@pytest.fixture
def athena(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("athena")
        client.create_work_group(
            Name="supermarket-lake",
            Configuration={"ResultConfiguration": {"OutputLocation": "s3://results/"}},
        )
        yield client


def test_a_view_runs_as_select_from_the_view_in_the_configured_workgroup(athena):
    # moto answers every Athena query with the rows queued here, as Athena would return them.
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/athena/query-results",
        json={
            "region": "us-east-1",
            "results": [
                {
                    "rows": [
                        {"Data": [{"VarCharValue": "payment_method"}, {"VarCharValue": "n"}]},
                        {"Data": [{"VarCharValue": "cash"}, {"VarCharValue": "7"}]},
                    ],
                    "column_info": [
                        {"Name": "payment_method", "Type": "varchar"},
                        {"Name": "n", "Type": "bigint"},
                    ],
                }
            ],
        },
        timeout=5,
    )

    result = AthenaEngine(poll_seconds=0).view("payment_method_mix", "dt = DATE '2026-03-01'")

    assert result.to_pylist() == [{"payment_method": "cash", "n": "7"}]
    (execution,) = athena.list_query_executions(WorkGroup="supermarket-lake")["QueryExecutionIds"]
    sent = athena.get_query_execution(QueryExecutionId=execution)["QueryExecution"]
    assert sent["Query"] == "SELECT * FROM payment_method_mix WHERE dt = DATE '2026-03-01'"
    assert sent["QueryExecutionContext"]["Database"] == "supermarket_lake"


def test_an_unknown_view_is_refused_before_calling_athena(athena):
    with pytest.raises(UnknownView):
        AthenaEngine(poll_seconds=0).view("sales")
    assert athena.list_query_executions()["QueryExecutionIds"] == []
