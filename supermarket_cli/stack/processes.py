"""Child processes of the stack: each in its own process group with its log in a file, started
in order, restarted with backoff when it dies, stopped in order.

Own process groups keep a terminal's Ctrl-C away from the children (only the supervisor gets
it, so it decides the order), and let a stop reach whatever a child itself started (Dagster's
run workers, the webserver's code server).
"""

import contextlib
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from supermarket_cli.process_groups import free_port, group_alive, port_is_free, signal_group

MAX_BACKOFF_SECONDS = 30.0
STABLE_SECONDS = 60.0  # a child up this long has its backoff reset


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    ready: Callable[[], bool] | None = None  # None: ready as soon as it runs
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 15.0
    port: int | None = None
    cwd: Path | None = None
    after_restart: Callable[[], None] | None = None  # e.g. re-create what a restart lost


@dataclass
class Child:
    spec: ChildSpec
    log_path: Path
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    restart_at: float | None = None  # when a dead child is due to start again
    stopping: bool = False
    history: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
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
        self.started_at = time.monotonic()
        self.restart_at = None

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        """Asks the whole group to stop, waits, then kills what is left; returns the exit code."""
        self.stopping = True
        if self.process is None:
            return None
        # The leader alone: it stops what it started itself (Dagster shuts its code server
        # down over gRPC, which hangs if that server was signalled first).
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(self.spec.stop_signal)
        try:
            code = self.process.wait(timeout=self.spec.stop_timeout)
        except subprocess.TimeoutExpired:
            signal_group(self.process.pid, signal.SIGKILL)
            code = self.process.wait(timeout=10)
        # The leader is gone; a grandchild it left behind (a run worker) must not outlive it.
        signal_group(self.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while group_alive(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # SIGKILL is asynchronous: wait until the group is really gone
        return code


class Supervisor:
    """Starts children in order and keeps them running; `check()` is called from the main loop."""

    def __init__(self, logs_dir: Path, report: Callable[[str], None]) -> None:
        self.logs_dir = logs_dir
        self.report = report
        self.children: dict[str, Child] = {}

    def start(self, spec: ChildSpec, ready_timeout: float = 60.0) -> Child:
        """Starts a child and waits until it is ready; raises if it dies or times out first."""
        child = Child(spec, self.logs_dir / f"{spec.name}.log")
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
        deadline = time.monotonic() + timeout
        while True:
            code = child.exit_code()
            if code is not None:
                name, log = child.spec.name, child.log_path
                raise ChildFailed(f"{name} exited with code {code}; see {log}")
            if ready is None or ready():
                return
            if time.monotonic() > deadline:
                raise ChildFailed(
                    f"{child.spec.name} not ready after {timeout:.0f}s; see {child.log_path}"
                )
            time.sleep(0.2)

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
            signal_group(child.pid, signal.SIGKILL)  # what it started dies with it
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

    def stop(self, name: str) -> None:
        child = self.children.get(name)
        if child is None or child.stopping:
            return
        began = time.monotonic()
        code = child.stop()
        exit_note = f", exit code {code}" if code not in (0, None) else ""
        self.report(f"stopped {name} ({time.monotonic() - began:.1f}s{exit_note})")

    def stop_all(self) -> None:
        """Stops whatever is still running, last started first."""
        for name in reversed(list(self.children)):
            self.stop(name)


class ChildFailed(RuntimeError):
    """A child died or never became ready while the stack was starting."""


def choose_port(host: str, wanted: int, pinned: bool) -> int:
    """The wanted port if free; 0 or a busy default gives any free port; a busy pinned one fails."""
    if wanted and port_is_free(host, wanted):
        return wanted
    if wanted and pinned:
        raise ChildFailed(f"port {wanted} on {host} is in use (set by an environment variable)")
    return free_port(host)


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 400
    except OSError:
        return False
