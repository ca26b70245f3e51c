"""The process layer: child processes in their own process groups with their logs, one stop
policy, loopback ports, and one way to wait until something is so.

A process group keeps a terminal's Ctrl-C away from the children (only their parent gets it, so
it decides the order) and lets a stop reach whatever a child started itself (Dagster's code
server and run workers). `supermarket up`, the Dagster servers of the tests and benchmarks, and
the tests' moto server all start and stop their children here.

POSIX only (Linux, macOS): process groups and `killpg`; psutil lists a group's processes.
"""

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, TypeVar

import psutil

MAX_BACKOFF_SECONDS = 30.0
STABLE_SECONDS = 60.0  # a child up this long has its backoff reset
KILL_WAIT_SECONDS = 5.0  # SIGKILL is asynchronous: how long a group may take to be gone

T = TypeVar("T")


class TimedOut(TimeoutError):
    """What wait_until waited for did not happen in time."""


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.1,
    describe: str | Callable[[], str] = "the condition still not met",
) -> T:
    """Calls predicate every interval seconds until it returns something true, and returns
    that; it is always called at least once. After timeout seconds raises TimedOut(describe),
    where describe may be a function, so that the message can say the last state seen. An
    exception from predicate (e.g. a child that died) ends the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimedOut(describe() if callable(describe) else describe)
        time.sleep(interval)


# -- ports ----------------------------------------------------------------------------------


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


def choose_port(host: str, wanted: int, pinned: bool) -> int:
    """The wanted port if free; 0 or a busy default gives any free port; a busy pinned one fails."""
    if wanted and port_is_free(host, wanted):
        return wanted
    if wanted and pinned:
        raise ChildFailed(f"port {wanted} on {host} is in use (set by an environment variable)")
    return free_port(host)


def accepts_connections(host: str, port: int, timeout: float = 1.0) -> bool:
    """A readiness probe for a server that speaks no HTTP (a gRPC code server): it listens."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """A readiness probe: the URL answers with a success or a redirect."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 400
    except OSError:
        return False


# -- process groups -------------------------------------------------------------------------


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def group_members(pgid: int) -> list[int]:
    """The live processes of a group (a zombie waits for its parent and runs nothing)."""
    members = []
    for pid in psutil.pids():
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            if os.getpgid(pid) == pgid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                members.append(pid)
    return members


def group_alive(pgid: int) -> bool:
    """Whether any process is left in the group (the leader's pid is the group's id)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader still counts for killpg: look at the processes themselves.
    return bool(group_members(pgid))


def stop_group(process: subprocess.Popen, stop_signal: int, timeout: float) -> int:
    """The one stop policy. Signals the leader alone and waits up to timeout for it to exit: it
    stops what it started itself (Dagster shuts its code server down over gRPC, which hangs if
    that server was signalled first). Then SIGKILLs whatever is left in the group (a run worker
    must not outlive its parent) and waits until the group is really gone. The process must
    have been started in its own session; returns its exit code."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(stop_signal)
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process.pid)
        code = process.wait(timeout=10)
    kill_group(process.pid)
    with contextlib.suppress(TimedOut):
        wait_until(lambda: not group_alive(process.pid), KILL_WAIT_SECONDS, 0.05)
    return code


# -- supervised children --------------------------------------------------------------------


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    ready: Callable[[], bool] | None = None  # None: ready as soon as it runs
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 15.0
    address: tuple[str, int] | None = None  # (host, port): a stop waits until it is free
    cwd: Path | None = None
    after_restart: Callable[[], None] | None = None  # e.g. re-create what a restart lost
    nice: int = 0  # added to its scheduling niceness (and that of what it starts later)


@dataclass
class Child:
    spec: ChildSpec
    log_path: Path | None  # None: output discarded
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    restart_at: float | None = None  # when a dead child is due to start again
    stopping: bool = False
    history: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_note(self) -> str:
        return f"; see {self.log_path}" if self.log_path else ""

    def start(self) -> None:
        """Starts the child in its own session and process group, appending to its log."""
        with contextlib.ExitStack() as files:
            log: IO[bytes] | int = subprocess.DEVNULL
            if self.log_path:
                log = files.enter_context(self.log_path.open("ab"))
                log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting\n".encode())
                log.flush()
            self.process = subprocess.Popen(
                self.spec.argv,
                env=self.spec.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.spec.cwd,
            )
        if self.spec.nice:
            with contextlib.suppress(ProcessLookupError):  # it may have died at once
                os.setpriority(os.PRIO_PROCESS, self.process.pid, os.nice(0) + self.spec.nice)
        self.started_at = time.monotonic()
        self.restart_at = None

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        """Stops the child and its group (stop_group), then waits until its port is free
        again; returns the exit code."""
        self.stopping = True
        if self.process is None:
            return None
        code = stop_group(self.process, self.spec.stop_signal, self.spec.stop_timeout)
        if self.spec.address:
            with contextlib.suppress(TimedOut):
                wait_until(lambda: port_is_free(*self.spec.address), KILL_WAIT_SECONDS, 0.1)
        return code


class ChildFailed(RuntimeError):
    """A child died or never became ready while starting."""


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _exit_on_sigterm() -> bool:
    """SIGTERM's default action ends the process at once, so no `with` block is left and its
    children (a benchmark's moto server) outlive it. Where nothing else handles SIGTERM, it is
    made a SystemExit in the main thread, which stops them; True if installed here."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return False  # e.g. `supermarket up`'s own stop_on_signals
    signal.signal(signal.SIGTERM, _raise_system_exit)
    return True


class Supervisor:
    """Starts children in order and keeps them running; `check()` is called from the main loop.
    As a context manager, it stops every child on exit."""

    def __init__(
        self, logs_dir: Path | None, report: Callable[[str], None] = lambda _: None
    ) -> None:
        self.logs_dir = logs_dir  # None: the children's output is discarded
        if logs_dir is not None:
            logs_dir.mkdir(parents=True, exist_ok=True)
        self.report = report
        self.children: dict[str, Child] = {}
        self._sigterm_installed = False

    def __enter__(self) -> "Supervisor":
        self._sigterm_installed = _exit_on_sigterm()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            self.stop_all()
        finally:
            if self._sigterm_installed and signal.getsignal(signal.SIGTERM) is _raise_system_exit:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def start(self, spec: ChildSpec, ready_timeout: float = 60.0) -> Child:
        """Starts a child and waits until it is ready; raises if it dies or times out first."""
        log_path = self.logs_dir / f"{spec.name}.log" if self.logs_dir else None
        child = Child(spec, log_path)
        self.children[spec.name] = child
        child.start()
        self._wait_ready(child, ready_timeout)
        return child

    def wait_ready(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        """Waits for a further sign of readiness of a started child (e.g. code loaded)."""
        self._wait_ready(self.children[name], timeout, ready)

    def _wait_ready(
        self, child: Child, timeout: float, ready: Callable[[], bool] | None = None
    ) -> None:
        ready = ready or child.spec.ready

        def running_and_ready() -> bool:
            code = child.exit_code()
            if code is not None:
                raise ChildFailed(f"{child.spec.name} exited with code {code}{child.log_note}")
            return ready is None or ready()

        not_ready = f"{child.spec.name} not ready after {timeout:.0f}s{child.log_note}"
        try:
            wait_until(running_and_ready, timeout, 0.2, not_ready)
        except TimedOut as exc:
            raise ChildFailed(str(exc)) from None

    def check(self) -> None:
        """Reports a child that died and restarts it after a backoff that doubles per crash."""
        now = time.monotonic()
        for child in self.children.values():
            if child.stopping:
                continue
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._restart(child)
                continue
            code = child.exit_code()
            if code is None:
                if now - child.started_at > STABLE_SECONDS:
                    child.restarts = 0
                continue
            assert child.pid is not None
            kill_group(child.pid)  # what it started dies with it
            delay = min(MAX_BACKOFF_SECONDS, 2.0**child.restarts)
            child.restarts += 1
            child.restart_at = now + delay
            line = (
                f"{child.spec.name} (pid {child.pid}) exited with code {code}; "
                f"restarting in {delay:.0f}s; log: {child.log_path}"
            )
            child.history.append(line)
            self.report(line)

    def _restart(self, child: Child) -> None:
        child.start()
        try:
            self._wait_ready(child, timeout=60)
            if child.spec.after_restart:
                child.spec.after_restart()
        except Exception as exc:  # reported; the next check sees it dead again if it is
            self.report(f"{child.spec.name} restarted (pid {child.pid}) but: {exc}")
            return
        self.report(f"{child.spec.name} restarted (pid {child.pid})")

    def stop(self, name: str) -> int | None:
        """Stops one child (the stop policy of stop_group); its exit code."""
        child = self.children.get(name)
        if child is None or child.stopping:
            return None
        began = time.monotonic()
        code = child.stop()
        exit_note = f", exit code {code}" if code not in (0, None) else ""
        self.report(f"stopped {name} ({time.monotonic() - began:.1f}s{exit_note})")
        return code

    def stop_all(self) -> None:
        """Stops whatever is still running, last started first."""
        for name in reversed(list(self.children)):
            self.stop(name)
