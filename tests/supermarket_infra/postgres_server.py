"""A PostgreSQL server of a test's own: Debian's binaries, a temporary data directory, a free
loopback port, stopped on exit. pg_ctl starts it (waiting until it accepts connections) and
stops it with a fast shutdown, which is PostgreSQL's own way to do both."""

import getpass
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from supermarket_cli.processes import free_port

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    bin_dir: str

    def create_database(self, name: str) -> None:
        subprocess.run(
            [
                f"{self.bin_dir}/createdb",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                name,
            ],
            check=True,
            capture_output=True,
        )


def _bin_dir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL is not installed: bash scripts/test.sh installs Debian's package")
    return os.path.dirname(found[-1])


def _as_server_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: run them as the package's postgres user.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    bin_dir = _bin_dir()
    user = "postgres" if os.geteuid() == 0 else getpass.getuser()
    # Not pytest's tmp_path: the server user must reach the folder, and root's is 0700.
    scratch = tempfile.mkdtemp(prefix="pg-", dir="/tmp")
    data = os.path.join(scratch, "data")
    if os.geteuid() == 0:
        shutil.chown(scratch, "postgres", "postgres")
    port = free_port(HOST)
    run = {"check": True, "capture_output": True, "text": True}
    subprocess.run(
        _as_server_user(
            [f"{bin_dir}/initdb", "-D", data, "-U", user, "--auth=trust", "-E", "UTF8"]
        ),
        **run,
    )
    options = f"-p {port} -k {scratch} -c listen_addresses={HOST} -c fsync=off"
    log = os.path.join(scratch, "server.log")
    try:
        subprocess.run(
            [
                *_as_server_user([f"{bin_dir}/pg_ctl", "-D", data, "-l", log, "-o", options, "-w"]),
                "start",
            ],
            **run,
        )
        yield Postgres(HOST, port, user, bin_dir)
    finally:
        subprocess.run(
            _as_server_user([f"{bin_dir}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(scratch, ignore_errors=True)
