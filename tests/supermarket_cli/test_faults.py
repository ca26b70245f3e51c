"""The fault-injecting S3 proxy in front of a moto server, and the project's S3 layer through it."""

import http.client
import io
import json
import random
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from click.testing import CliRunner

from lake_contract import s3 as lake_s3
from supermarket_cli import faults
from supermarket_cli.faults import FaultPlan, running_fault_proxy
from supermarket_cli.main import cli
from supermarket_cli.processes import free_port, port_is_free, wait_until
from tests.moto_server import running_moto

ROOT = Path(__file__).resolve().parents[2]

BUCKET = "faulty-lake"


@pytest.fixture
def moto(monkeypatch):
    with running_moto(monkeypatch) as endpoint:
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield endpoint


def lake_through(proxy) -> lake_s3.LakeBucket:
    """The project's one S3 layer (botocore's standard retry mode), pointed at the proxy."""
    return lake_s3.LakeBucket(BUCKET, client=lake_s3.s3_client(endpoint_url=proxy.url))


def test_every_object_gets_through_twenty_percent_faults_intact(moto):
    # given: objects from empty to 300 kB, and a proxy faulting 20% of calls, every kind
    rng = random.Random(3)
    objects = {
        f"lake/transactions/dt=2026-03-01/{n:03d}.parquet": rng.randbytes(
            rng.choice([0, 1, 300_000]) + n
        )
        for n in range(40)
    }
    plan = FaultPlan(rate=0.2, delay_seconds=0.05, max_in_a_row=2, seed=11)
    with running_fault_proxy(moto, plan) as proxy:
        lake = lake_through(proxy)

        # when: each is written, listed and read back through the proxy, one call at a time
        for key, body in objects.items():
            lake.write(key, body)
        listed = lake.keys("lake/")
        read = {key: lake.read(key) for key in listed}

    # then: every byte intact, though every kind of fault struck
    assert read == objects
    assert set(proxy.stats.faults) == set(faults.FAULTS)
    assert 0.1 < sum(proxy.stats.faults.values()) / proxy.stats.calls < 0.3
    direct = boto3.client("s3")  # and what reached moto is what was sent
    assert {k: direct.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in objects} == objects


@pytest.mark.parametrize("fault", faults.FAULTS)
def test_each_fault_strikes_and_the_s3_layer_recovers_from_it(moto, fault):
    # given: every other call faulted, by one kind only
    plan = FaultPlan(rate=1.0, faults=(fault,), delay_seconds=0.05, max_in_a_row=1)
    body = random.Random(5).randbytes(200_000)
    with running_fault_proxy(moto, plan) as proxy:
        lake = lake_through(proxy)

        # when: a write and a read, each struck once then tried again
        lake.write("lake/x.parquet", body)
        assert lake.read("lake/x.parquet") == body

    # then: a failing fault costs each call one more attempt; a delay costs only time
    assert proxy.stats.faults == {fault: 2}
    assert proxy.stats.calls == (2 if fault == faults.DELAY else 4)
    forwarded = {faults.SLOWDOWN: 2, faults.INTERNAL_ERROR: 2, faults.RESET: 2, faults.DELAY: 2}
    assert proxy.stats.forwarded == forwarded.get(fault, 4)


def raw_call(url, method, path, body=b"", headers=None):
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    answer = (response.status, response.read(), dict(response.getheaders()))
    connection.close()
    return answer


def test_with_no_faults_every_byte_passes_unchanged(moto):
    with running_fault_proxy(moto, FaultPlan(rate=0.0)) as proxy:
        # a chunked PUT, as a streaming client sends it
        chunks = [b"first chunk,", b"second, longer chunk of bytes", b"!"]
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        status, _, _ = raw_call(proxy.url, "PUT", f"/{BUCKET}/raw/chunked", chunked,
                                {"Transfer-Encoding": "chunked"})  # fmt: skip
        assert status == 200
        # boto3's upload_fileobj sends Expect: 100-continue and waits for it
        client = lake_s3.s3_client(endpoint_url=proxy.url)
        client.upload_fileobj(io.BytesIO(b"u" * 70_000), BUCKET, "raw/uploaded")
        head = client.head_object(Bucket=BUCKET, Key="raw/uploaded")
        through = client.get_object(Bucket=BUCKET, Key="raw/chunked")["Body"].read()
        stats = json.loads(raw_call(proxy.url, "GET", "/_fault-proxy/stats")[1])

    direct = boto3.client("s3")
    assert direct.get_object(Bucket=BUCKET, Key="raw/chunked")["Body"].read() == b"".join(chunks)
    assert direct.get_object(Bucket=BUCKET, Key="raw/uploaded")["Body"].read() == b"u" * 70_000
    assert head["ContentLength"] == 70_000
    assert through == b"".join(chunks)
    assert stats["faults"] == {} and stats["calls"] == stats["forwarded"] >= 4


@pytest.mark.parametrize(
    "plan", [{"rate": 1.5}, {"rate": -0.1}, {"faults": ("teleport",)}, {"faults": ()}]
)
def test_a_plan_that_cannot_be_is_refused(plan):
    with pytest.raises(ValueError):
        FaultPlan(**plan)


def test_the_command_proxies_until_sigterm_and_reports_its_counts(moto):
    port = free_port()
    command = [sys.executable, "-m", "supermarket_cli.main", "fault-proxy", "--upstream", moto,
               "--port", str(port), "--rate", "0.5", "--faults", "slowdown",
               "--seed", "1"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: not port_is_free("127.0.0.1", port), 20, 0.05, "never listened")
        client = lake_s3.s3_client(endpoint_url=f"http://127.0.0.1:{port}")
        for n in range(10):
            client.put_object(Bucket=BUCKET, Key=f"raw/{n}", Body=b"x")
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    assert f"fault-proxy http://127.0.0.1:{port} -> {moto}" in out
    assert "fault-proxy stopped: " in out and "'slowdown': " in out
    assert len(boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]) == 10


def test_the_commands_help_names_every_kind_of_fault():
    result = CliRunner().invoke(cli, ["fault-proxy", "--help"])

    assert result.exit_code == 0
    assert all(kind in result.output for kind in faults.FAULTS)
