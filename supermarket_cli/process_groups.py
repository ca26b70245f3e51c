"""Servers run as child processes, each in its own process group, on loopback ports.

A process group lets a stop reach whatever a child started itself (Dagster's code server and
run workers), and keeps a terminal's Ctrl-C away from the children so their parent decides the
order. One module, used by the stack's supervisor and by the Dagster servers' context manager.
"""

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """Nobody listens there (connections of a stopped server lingering in TIME_WAIT don't count:
    servers bind with SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def group_alive(pgid: int) -> bool:
    """Whether any process is left in the group (the leader's pid is the group's id)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader still counts for killpg; /proc tells the truth.
    return any(_pgid_of(pid) == pgid for pid in _all_pids())


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _pgid_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is waiting for its parent, it runs nothing
        return None
    return int(fields[2])


def stop_process_group(
    process: subprocess.Popen, timeout: float = 20.0, children_grace: float = 3.0
) -> None:
    """SIGTERM the process's whole group, wait up to timeout for it to exit and children_grace
    more for the rest of the group, then SIGKILL what is left. The process must have been
    started in its own session (start_new_session=True)."""
    pgid = process.pid
    signal_group(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    # Children (code server, run workers) may outlive the leader: give them a moment.
    deadline = time.monotonic() + children_grace
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    signal_group(pgid, signal.SIGKILL)
    process.wait()
