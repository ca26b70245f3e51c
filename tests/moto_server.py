"""moto for tests: the test AWS environment, and a real moto server on a free loopback port."""

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

from lake_contract import s3
from supermarket_cli.processes import free_port
from supermarket_cli.stack.children import moto_server as moto_server_process

__all__ = ["free_port", "moto_server_process", "running_moto", "use_test_aws"]


def use_test_aws(monkeypatch, endpoint: str | None = None) -> None:
    """Fake credentials, one region, the given endpoint (None: in-process mock_aws), no
    LAKE_BUCKET override, and a fresh S3 client for the handler."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    else:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("LAKE_BUCKET", raising=False)
    s3.s3_client.cache_clear()


@contextmanager
def running_moto(monkeypatch) -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # In-process servers share moto's global state: start every test from nothing.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    use_test_aws(monkeypatch, endpoint)
    try:
        yield endpoint
    finally:
        s3.s3_client.cache_clear()
        server.stop()
