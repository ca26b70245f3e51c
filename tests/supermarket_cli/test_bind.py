"""Every server of the local stack binds 127.0.0.1 unless told otherwise: its child specs, and
the listening sockets of the cheap ones started for real. (The whole stack's sockets, Dagster's
code servers included, are checked live in test_stack_up.)"""

import contextlib
import os
import urllib.request

import psutil
import pytest

from supermarket_cli import dagster_instance
from supermarket_cli.processes import Supervisor, free_port
from supermarket_cli.stack import children
from supermarket_cli.stack.config import StackConfig, from_environment

LOOPBACK = "127.0.0.1"


def server_specs(host: str):
    """Each server child the stack and the soak start, with the flag that carries its address."""
    env = dict(os.environ)
    return [
        (children.moto(host, 5000, env), "-H"),
        (children.dashboard("s3://lake", host, 8050, env), "--host"),
        (dagster_instance.webserver_spec(host, 3000, env), "-h"),
        (children.fault_proxy("http://127.0.0.1:5000", host, 5001, env, 0.2), "--host"),
    ]


def test_the_stacks_address_defaults_to_loopback():
    assert StackConfig().host == LOOPBACK
    assert from_environment({}).host == LOOPBACK


@pytest.mark.parametrize("index", range(len(server_specs(LOOPBACK))))
def test_every_server_spec_binds_the_stacks_host(index):
    spec, flag = server_specs(StackConfig().host)[index]

    assert spec.address is not None and spec.address[0] == LOOPBACK, spec.name
    assert spec.argv[spec.argv.index(flag) + 1] == LOOPBACK, spec.name
    assert "0.0.0.0" not in spec.argv and "::" not in spec.argv


def test_the_other_children_are_no_servers():
    env = dict(os.environ)
    others = [
        children.lambda_runtime("http://queue", env),
        children.payment_processor(StackConfig(), env),
        dagster_instance.daemon_spec(env),
    ]
    assert all(spec.address is None for spec in others)


def listening(pid: int) -> set[str]:
    with contextlib.suppress(psutil.Error):
        return {
            c.laddr.ip
            for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }
    return set()


def test_moto_and_the_fault_proxy_listen_on_loopback_only():
    env, host = dict(os.environ), StackConfig().host
    with Supervisor(None) as supervisor:
        moto_port, proxy_port = free_port(), free_port()
        moto = supervisor.start(children.moto(host, moto_port, env))
        upstream = f"http://{host}:{moto_port}"
        proxy = supervisor.start(children.fault_proxy(upstream, host, proxy_port, env, 0.0))
        with urllib.request.urlopen(f"http://{host}:{proxy_port}/_fault-proxy/stats") as answer:
            assert answer.status == 200

        assert moto.pid is not None and proxy.pid is not None
        assert listening(moto.pid) == {LOOPBACK}
        assert listening(proxy.pid) == {LOOPBACK}
