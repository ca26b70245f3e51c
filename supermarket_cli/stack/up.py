"""`supermarket up`, `status` and `down`: start the stack, supervise it, stop it in order.

State lives in one folder (.state/ by default): logs/*.log of every process, dagster_home/,
s3/<bucket>/ (the lake kept between runs), and stack.json (pids, ports, URLs, the latest
status line) which `status` and `down` read.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from lake_contract import tables
from lake_contract.pandas_free import WITHOUT_PANDAS_VARIABLE, leave_pandas_out
from lake_contract.s3 import LakeBucket
from supermarket_cli.processes import (
    ChildFailed,
    Supervisor,
    TimedOut,
    choose_port,
    group_alive,
    kill_group,
    wait_until,
)
from supermarket_cli.stack import children, snapshot
from supermarket_cli.stack.config import (
    LOCAL_CREDENTIAL,
    LOCAL_REGION,
    StackConfig,
)
from supermarket_cli.stack.status import LakeWatch, StatusPrinter

DRAIN_SECONDS = 20.0  # the longest the Lambda runtime gets to empty the queue on a stop
STATUS_SECONDS = 1.0


@dataclass
class StackRecord:
    """stack.json: what `status` and `down` need to find a stack started elsewhere."""

    supervisor_pid: int
    phase: str  # starting, loading, running, stopping
    urls: dict[str, str]
    processes: dict[str, int | None] = field(default_factory=dict)
    status: str = ""
    status_at: float = 0.0
    events: list[str] = field(default_factory=list)

    def write(self, path: Path) -> None:
        aside = path.with_suffix(".json.part")
        aside.write_text(json.dumps(asdict(self), indent=2))
        os.replace(aside, path)

    @classmethod
    def read(cls, path: Path) -> "StackRecord | None":
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def _aws_environment(config: StackConfig, endpoint: str | None) -> dict[str, str]:
    """What every process needs to reach the stack's AWS: moto's endpoint and any credentials
    it accepts; with no endpoint, the caller's own AWS configuration untouched."""
    if endpoint is None:
        return {}
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", LOCAL_REGION),
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", LOCAL_CREDENTIAL),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", LOCAL_CREDENTIAL),
    }


class Stack:
    """One running stack: its supervisor, its record, and the phases of `up`."""

    def __init__(self, config: StackConfig, reset: bool, load: bool, use_aws: bool) -> None:
        self.config = config
        self.reset = reset
        self.load = load
        self.use_aws = use_aws
        self.stop = threading.Event()
        self.hurry = threading.Event()  # a second Ctrl-C: stop without draining or saving
        self.printer = StatusPrinter()
        self.supervisor = Supervisor(config.logs_dir, self._report)
        self.record = StackRecord(os.getpid(), "starting", {})
        self.queue_url = ""
        self.loader: threading.Thread | None = None
        # Set once the load is over (or skipped): the main loop then starts the live feed.
        self.feed_due = threading.Event()
        self.feed_env: dict[str, str] = {}
        self.load_error: BaseException | None = None
        self._status_thread: threading.Thread | None = None

    def _report(self, line: str) -> None:
        self.printer.message(line)
        self.record.events = [*self.record.events[-19:], f"{time.strftime('%H:%M:%S')} {line}"]
        self._save_record()

    def _save_record(self) -> None:
        # list(): the loader thread reports while the main loop may start the feed.
        children = list(self.supervisor.children.items())
        self.record.processes = {n: c.pid for n, c in children}
        with contextlib.suppress(OSError):
            self.record.write(self.config.stack_file)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.stop.is_set():
            self.hurry.set()
        self.stop.set()

    def _check_stopping(self) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt

    def prepare_state(self) -> None:
        config = self.config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        running = StackRecord.read(config.stack_file)
        other = running and running.supervisor_pid != os.getpid()
        if other and psutil.pid_exists(running.supervisor_pid):
            raise ChildFailed(
                f"a stack is already running (pid {running.supervisor_pid}, state in "
                f"{config.state_dir}); stop it with `supermarket down`"
            )
        if self.reset:
            snapshot.discard(config.snapshot_dir)
            # Dagster's record of what it loaded goes with the lake, or the history is skipped.
            shutil.rmtree(config.dagster_home, ignore_errors=True)
            for kept in (config.catalog_file, config.state_dir / "loaded.json"):
                with contextlib.suppress(FileNotFoundError):
                    kept.unlink()
        elif snapshot.is_plain_parquet_lake(config.snapshot_dir, config.catalog_file):
            raise ChildFailed(
                f"the lake kept in {config.snapshot_dir} is plain Parquet, from before the fact "
                "tables were Iceberg tables; start again with `supermarket up --reset`"
            )
        elif lacking := snapshot.columns_not_kept(config.snapshot_dir, config.catalog_file):
            columns = "; ".join(f"{t} lacks {', '.join(c)}" for t, c in sorted(lacking.items()))
            raise ChildFailed(
                f"the lake kept in {config.snapshot_dir} has tables from an earlier schema "
                f"({columns}); start again with `supermarket up --reset`"
            )
        shutil.rmtree(config.logs_dir, ignore_errors=True)  # logs are per run
        config.logs_dir.mkdir(parents=True)

    def run(self) -> int:
        """Starts everything, loads, then supervises until a stop is asked; always stops all."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        try:
            self.prepare_state()
            self._save_record()
            self._start()
            self._supervise()
            return 0 if self.load_error is None else 1
        except KeyboardInterrupt:
            return 0
        except ChildFailed as exc:
            self._report(f"supermarket up: {exc}")
            return 1
        finally:
            self._shutdown()

    def _start(self) -> None:
        from supermarket_cli.dagster_instance import start_dagster, write_instance_config
        from supermarket_cli.stack import provision
        from supermarket_cli.stack.loading import history_start

        config = self.config
        host = config.host
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "LAKE_BUCKET": config.bucket,
               WITHOUT_PANDAS_VARIABLE: "1"}  # fmt: skip
        endpoint = config.endpoint
        if config.embedded_aws and not self.use_aws:
            port = choose_port(host, config.moto_port, "moto_port" in config.ports_pinned)
            endpoint = f"http://{host}:{port}"
            aws = _aws_environment(config, endpoint)
            moto = children.moto(host, port, {**env, **aws})
            moto.after_restart = self._reprovision
            self.supervisor.start(moto)
            self.record.urls["aws"] = endpoint
        elif endpoint:
            aws = _aws_environment(config, endpoint)
        else:  # --aws: boto3's own resolution everywhere, this process included
            aws = {}
            env.pop("AWS_ENDPOINT_URL", None)
            os.environ.pop("AWS_ENDPOINT_URL", None)
        if aws:
            # moto's Glue cannot refuse a stale commit: every committer takes turns instead.
            aws[tables.COMMIT_LOCK_VARIABLE] = str(config.state_dir / "commit.lock")
        env |= aws
        os.environ.update(aws)  # this process provisions and watches through the same endpoint
        self._check_stopping()

        LakeBucket(config.bucket).create()
        if config.embedded_aws and not self.use_aws and not self.reset:
            restored = snapshot.restore(config.bucket, config.snapshot_dir, self._report)
            registered = snapshot.restore_catalog(config.glue_database, config.catalog_file)
            if not restored or not registered:
                with contextlib.suppress(FileNotFoundError):
                    (config.state_dir / "loaded.json").unlink()
        made = provision.provision(config)
        self.queue_url = made.queue_url
        self._report(
            f"provisioned s3://{config.bucket}, queue {config.queue} (+ -dlq), "
            f"Glue {config.glue_database}.{{{','.join(made.tables)}}}, topic {config.alert_topic}"
        )
        env |= {"ALERT_TOPIC_ARN": made.alert_topic_arn, "GLUE_DATABASE": config.glue_database}
        self._check_stopping()

        self.supervisor.start(children.lambda_runtime(made.queue_url, env))
        self.feed_env = dict(env)  # the feed starts after the load (_supervise)

        dagster_port = choose_port(host, config.dagster_port, "dagster_port" in config.ports_pinned)
        write_instance_config(config.dagster_home)
        if not env.get("HISTORY_START"):  # the day partitions start at the first day loaded
            env["HISTORY_START"] = history_start(config, config.state_dir / "loaded.json")
        env["HISTORY_DAYS_PER_RUN"] = str(config.history_days_per_run)
        self.record.urls["dagster"] = start_dagster(
            self.supervisor, config.dagster_home, host, dagster_port, env
        )
        self.record.urls["lake"] = f"s3://{config.bucket}"  # what `query` and `dashboard` find
        dashboard_port = choose_port(
            host, config.dashboard_port, "dashboard_port" in config.ports_pinned
        )
        lake = f"s3://{config.bucket}"
        with_pandas = {k: v for k, v in env.items() if k != WITHOUT_PANDAS_VARIABLE}
        self.supervisor.start(children.dashboard(lake, host, dashboard_port, with_pandas))
        self.record.urls["dashboard"] = f"http://{host}:{dashboard_port}"
        self._check_stopping()
        self.record.phase = "loading"
        self._save_record()  # before the URLs are printed: whoever reads them finds the pids
        self._print_urls(endpoint)
        self.loader = threading.Thread(target=self._load, name="load", daemon=True)
        self.loader.start()

    def _reprovision(self) -> None:
        """moto keeps AWS in memory: after a restart the bucket, queues, tables and topic are
        created again (empty), so the feed and the Lambda runtime carry on."""
        from supermarket_cli.stack import provision

        provision.provision(self.config)
        self._report("moto's state was lost with it: resources provisioned again, lake empty")

    def _print_urls(self, endpoint: str | None) -> None:
        config, urls = self.config, self.record.urls
        lines = [
            f"supermarket-lake is up; state in {config.state_dir}, logs in {config.logs_dir}",
            f"  Dagster UI   {urls['dagster']}",
            f"  dashboard    {urls['dashboard']}",
            f"  AWS          {endpoint or 'your AWS account'}  (bucket s3://{config.bucket})",
        ]
        # `query` finds this stack's lake and endpoint from the state folder itself.
        default_state = config.state_dir.resolve() == Path(".state").resolve()
        state = "" if default_state else f"SUPERMARKET_STATE={config.state_dir} "
        lines.append(f"  query        {state}.venv/bin/supermarket query --view freshness")
        lines.append(
            f"  live feed    {config.tps:g} transactions/s in {config.fps:g} files/s, once loaded"
        )
        for line in lines:
            self.printer.message(line)

    def _load(self) -> None:
        """Reference data and history through Dagster itself; "loaded" once the data is in,
        while the history runs' day checks may still be running."""
        from supermarket_cli.stack.loading import load_through_dagster

        marker = self.config.state_dir / "loaded.json"
        # The feed waits for the load: on two cores its ingestion (Iceberg commits, moto) takes
        # about a core, which the load's runs and the starting servers need more.
        try:
            if self.load:
                load_through_dagster(
                    self.record.urls["dagster"], self.config, marker, self._report, self.stop,
                    loaded=self._loaded,
                )  # fmt: skip
            else:
                self._report("not loading reference data and history (--no-load)")
                self._loaded()
        except Exception as exc:
            self.load_error = exc
            if not self.stop.is_set():
                done = self.feed_due.is_set()
                self._report(f"{'the day checks' if done else 'loading'} failed: {exc}; "
                             "the stack keeps running")  # fmt: skip
                self.record.phase = "running"
                self._save_record()
        finally:
            self.feed_due.set()

    def _loaded(self) -> None:
        self.record.phase = "running"
        self._save_record()
        self._report("loaded; live status follows (Ctrl-C stops everything)")
        self.feed_due.set()

    def _watch_lake(self, latest: dict[str, str]) -> None:
        watch = LakeWatch(self.config.bucket)
        while not self.stop.is_set():
            try:
                latest["line"] = watch.refresh().line()
            except Exception as exc:  # moto restarting: say so and keep watching
                latest["line"] = f"lake not reachable ({type(exc).__name__})"
            self.stop.wait(STATUS_SECONDS)

    def _supervise(self) -> None:
        latest: dict[str, str] = {}
        self._status_thread = threading.Thread(
            target=self._watch_lake, args=(latest,), name="status", daemon=True
        )
        self._status_thread.start()
        last_record = 0.0
        while not self.stop.is_set():
            if self.feed_due.is_set() and "payment-processor" not in self.supervisor.children:
                self.supervisor.start(children.payment_processor(self.config, self.feed_env))
                self._save_record()
            self.supervisor.check()
            line = latest.get("line")
            if line and self.record.phase == "running":
                self.printer.show(line)
            if line and time.monotonic() - last_record > 2:
                self.record.status, self.record.status_at = line, time.time()
                self._save_record()
                last_record = time.monotonic()
            self.stop.wait(0.5)

    def _shutdown(self) -> None:
        """Feed first, Lambda runtime once the queue is empty, Dagster, save the lake, moto."""
        from supermarket_cli.stack import provision

        self.stop.set()
        self.record.phase = "stopping"
        self._save_record()
        self.printer.message("stopping ...")
        self.supervisor.stop("payment-processor")
        if self.queue_url and "lambda-runtime" in self.supervisor.children:

            def drained() -> bool:
                try:
                    return self.hurry.is_set() or provision.queue_depth(self.queue_url) == 0
                except Exception:
                    return True  # the queue is gone (moto died): nothing left to drain

            with contextlib.suppress(TimedOut):
                wait_until(drained, DRAIN_SECONDS, 0.2)
        self.supervisor.stop("lambda-runtime")
        # The rest hold no lake data in flight: stopped together, as each takes seconds.
        together = [
            threading.Thread(target=self.supervisor.stop, args=(name,))
            for name in children.STOP_ORDER[2:-1]
        ]
        for thread in together:
            thread.start()
        for thread in together:
            thread.join()
        moto = self.supervisor.children.get("moto")
        if moto and moto.is_running() and not self.hurry.is_set():
            try:
                snapshot.save_catalog(self.config.glue_database, self.config.catalog_file)
                saved = snapshot.save(self.config.bucket, self.config.snapshot_dir, self._report)
                self._report(f"lake kept in {self.config.snapshot_dir} ({saved.objects:,} objects)")
            except Exception as exc:
                self._report(f"could not save the lake ({exc}); the next up starts empty")
                snapshot.discard(self.config.snapshot_dir)
                with contextlib.suppress(FileNotFoundError):
                    self.config.catalog_file.unlink()
        self.supervisor.stop_all()
        for child in self.supervisor.children.values():
            if child.pid and group_alive(child.pid):
                self._report(f"{child.spec.name}: processes left in group {child.pid}")
        with contextlib.suppress(FileNotFoundError):
            self.config.stack_file.unlink()
        self.printer.message("stopped")


def up(config: StackConfig, reset: bool, load: bool, use_aws: bool) -> int:
    # The supervisor, like its children but the dashboard, never uses pandas.
    leave_pandas_out({WITHOUT_PANDAS_VARIABLE: "1"})
    return Stack(config, reset=reset, load=load, use_aws=use_aws).run()


def detach(config: StackConfig, argv: list[str], timeout: float = 600.0) -> int:
    """Starts `up` in the background, waits until it has loaded, prints its URLs."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    log = config.state_dir / "up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "supermarket_cli.main", "up", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def loaded() -> StackRecord | None:
        if process.poll() is not None:
            raise ChildFailed(f"supermarket up: the stack exited (code {process.returncode})")
        record = StackRecord.read(config.stack_file)
        running = record and record.supervisor_pid == process.pid and record.phase == "running"
        return record if running else None

    try:
        record = wait_until(
            loaded, timeout, 0.5, f"supermarket up: not running after {timeout:.0f}s; see {log}"
        )
    except ChildFailed as exc:
        print(log.read_text()[-2000:], file=sys.stderr)
        print(exc, file=sys.stderr)
        return 1
    except TimedOut as exc:
        print(exc, file=sys.stderr)
        return 1
    for name, url in record.urls.items():
        print(f"{name:10} {url}")
    print(f"running in the background (pid {process.pid}); output in {log}")
    print("`supermarket status` shows it, `supermarket down` stops it")
    return 0


def status(config: StackConfig) -> int:
    record = StackRecord.read(config.stack_file)
    if record is None or not psutil.pid_exists(record.supervisor_pid):
        print(f"no stack running (state in {config.state_dir})")
        return 3
    print(f"stack {record.phase}, supervisor pid {record.supervisor_pid}")
    for name, pid in record.processes.items():
        state = "running" if pid and psutil.pid_exists(pid) else "down"
        print(f"  {name:18} pid {pid}  {state}")
    for name, url in record.urls.items():
        print(f"  {name:18} {url}")
    if record.status:
        print(f"  {record.status}  ({time.time() - record.status_at:.0f}s ago)")
    for event in record.events[-5:]:
        print(f"  {event}")
    return 0


def down(config: StackConfig, timeout: float = 180.0) -> int:
    record = StackRecord.read(config.stack_file)
    if record is None:
        print(f"no stack running (state in {config.state_dir})")
        return 0
    if psutil.pid_exists(record.supervisor_pid):
        os.kill(record.supervisor_pid, signal.SIGTERM)
        try:
            wait_until(
                lambda: not psutil.pid_exists(record.supervisor_pid),
                timeout,
                0.2,
                f"supervisor {record.supervisor_pid} still running after {timeout:.0f}s",
            )
        except TimedOut as exc:
            print(exc)
            return 1
    # A supervisor killed outright leaves its children: end their groups too.
    for pid in record.processes.values():
        if pid:
            kill_group(pid)
    with contextlib.suppress(FileNotFoundError):
        config.stack_file.unlink()
    print("stopped")
    return 0
