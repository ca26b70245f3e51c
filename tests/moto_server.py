"""moto for tests: the test AWS environment, and a real moto server on a free loopback port."""

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from moto.server import ThreadedMotoServer

from lake_contract import s3
from supermarket_cli.process_groups import free_port


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


@contextmanager
def moto_server_process() -> Iterator[str]:
    """moto server as its own process (other processes, e.g. Dagster's, can reach it), in its
    own process group, stopped on exit. Yields the endpoint URL."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
