"""The stack's moto server: moto's own app behind waitress, its service lookup remembered."""

import http.client
import threading
import time
from urllib.parse import urlparse

import boto3
import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from supermarket_cli.moto_server import MotoApp, signed_service
from tests.moto_server import moto_server_process, use_test_aws


def _signed(service: str, region: str = "us-east-1", path: str = "/", **extra: str) -> dict:
    scope = f"KEY/20261206/{region}/{service}/aws4_request"
    return {"HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, "
            "Signature=abc", "PATH_INFO": path, "HTTP_HOST": "127.0.0.1:5000", **extra}  # fmt: skip


@pytest.mark.parametrize("service", ["s3", "sqs", "glue", "sns", "athena", "sts"])
def test_a_remembered_app_is_the_one_motos_own_lookup_picks(service):
    app = MotoApp()
    environ = _signed(service, path="/lake-bucket/key" if service == "s3" else "/")

    first = app.get_application(dict(environ))

    assert first is app.get_application(dict(environ))  # remembered
    assert app._apps == {(service, "us-east-1"): first}
    # moto's own lookup, which remembers nothing, picks the same backend
    motos_own = DomainDispatcherApplication(create_backend_app).get_application(dict(environ))
    assert first.service == motos_own.service


def test_requests_moto_tells_apart_by_more_than_their_signature_are_never_remembered():
    assert signed_service(_signed("s3", path="/v20180820/configuration/publicAccessBlock")) is None
    assert signed_service(_signed("s3", HTTP_HOST="123.s3-control.us-east-1.amazonaws.com")) is None
    assert signed_service(_signed("dynamodb")) is None  # moto reads its target header too
    assert signed_service(_signed("s3", path="/moto-api/reset")) is None
    assert signed_service({"PATH_INFO": "/lake/key"}) is None  # unsigned
    assert signed_service(_signed("glue", region="eu-west-1")) == ("glue", "eu-west-1")


def test_the_server_keeps_a_connection_for_many_requests_and_serves_beside_long_polls(
    monkeypatch,
):
    with moto_server_process() as endpoint:
        use_test_aws(monkeypatch, endpoint)
        s3, sqs = boto3.client("s3"), boto3.client("sqs")
        s3.create_bucket(Bucket="kept-alive")
        queue = sqs.create_queue(QueueName="long-polls")["QueueUrl"]

        # Given more long polls waiting at once than the stack ever runs
        polls = [threading.Thread(target=lambda: boto3.client("sqs").receive_message(
            QueueUrl=queue, WaitTimeSeconds=3)) for _ in range(8)]  # fmt: skip
        for poll in polls:
            poll.start()
        time.sleep(0.3)
        # when S3 is asked meanwhile, then it answers at once
        began = time.monotonic()
        s3.put_object(Bucket="kept-alive", Key="k", Body=b"v")
        assert s3.get_object(Bucket="kept-alive", Key="k")["Body"].read() == b"v"
        assert time.monotonic() - began < 1.0
        for poll in polls:
            poll.join()

        # and an empty object (boto3 asks "Expect: 100-continue" with no body) is put at once
        began = time.monotonic()
        s3.put_object(Bucket="kept-alive", Key="empty", Body=b"")
        assert s3.get_object(Bucket="kept-alive", Key="empty")["Body"].read() == b""
        assert time.monotonic() - began < 1.0

        # and one HTTP connection carries request after request
        address = urlparse(endpoint)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=5)
        for _ in range(3):
            connection.request("GET", "/moto-api/data.json")
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
            assert answer.getheader("Connection", "").lower() != "close"
        connection.close()
