"""`supermarket soak`: a local stack of its own (own state folder, free ports) driven by several
payment processors while faults are injected on a schedule, then settled and reconciled.

The faults, each at least once per cycle (a cycle is the run, up to CYCLE_SECONDS long):
- S3 errors (503 SlowDown, 500, resets before and mid-response, delays) for a share of the calls
  of the Lambda runtimes, from the fault proxy in front of moto (`supermarket_cli/faults.py`);
  the producers write to moto directly, so what they wrote is the truth;
- the Lambda runtime SIGKILLed while a batch is in flight, restarted by the supervisor;
- notifications of files already ingested sent again, twice each and shuffled, into the queue;
- a burst of bad files (`bad_files.py`);
- a second runtime polling the same queue for a while;
- the Dagster daemon SIGKILLed while a backfill of history runs, restarted by the supervisor.

Then: producers stopped, faults off, the queue drained, the dead-letter queue replayed, the
open day compacted through Dagster (which dedupes ids across sources), and the reconciliation.
"""

import contextlib
import json
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import psutil

from lake_contract import layout, tables
from lake_contract.pandas_free import WITHOUT_PANDAS_VARIABLE
from lake_contract.s3 import LakeBucket
from supermarket_cli.processes import (
    ChildSpec,
    Supervisor,
    TimedOut,
    free_port,
    wait_until,
)
from supermarket_cli.soak import bad_files
from supermarket_cli.soak.reconcile import Reconciliation, reconcile
from supermarket_cli.stack import children
from supermarket_cli.stack.config import LOCAL_CREDENTIAL, LOCAL_REGION, StackConfig

CYCLE_SECONDS = 300.0  # every fault kind once per cycle
SETTLE_SECONDS = 180.0  # the longest the queue may stay without shrinking at the end
AFTER_EFFECT_SECONDS = 15.0  # a fault still shows this long after it ends (visibility 10 s)
HISTORY_ASSETS = ["raw_history_logs", "transactions", "transaction_items"]


@dataclass(frozen=True)
class SoakOptions:
    minutes: float
    rate: float  # transactions per second, all producers together
    producers: int = 3
    files_per_second: float = 2.0  # all producers together, as the stack's default feed
    fault_rate: float = 0.2  # share of S3 calls faulted inside a fault window
    large_file_bytes: int = 100 * 1024 * 1024
    history_days: int = 2
    history_per_day: int = 500
    stores: int = 5
    skus: int = 2000
    state_dir: Path | None = None  # None: a temporary folder, removed after
    keep_state: bool = False


@dataclass
class FaultWindow:
    kind: str
    start: float  # epoch seconds
    end: float | None = None
    detail: str = ""

    @property
    def ended(self) -> float:
        """When it ended; an instant fault (a kill) ends as it starts."""
        return self.end or self.start


@dataclass
class SoakReport:
    options: dict[str, Any]
    seconds: float = 0.0
    reconciliation: Reconciliation = field(default_factory=Reconciliation)
    faults: list[FaultWindow] = field(default_factory=list)
    proxy: dict[str, Any] = field(default_factory=dict)
    redeliveries: int = 0  # ingestions of a source already in the lake: unchanged, or replaced
    dead_lettered: int = 0
    replayed: int = 0
    restarts: dict[str, int] = field(default_factory=dict)
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    peak_rss_mib: float = 0.0
    peak_rss_by_child: dict[str, float] = field(default_factory=dict)  # MiB, each child's group
    slowest_outside_faults: list[dict[str, Any]] = field(default_factory=list)
    lake_objects: int = 0
    snapshots: dict[str, int] = field(default_factory=dict)
    backfills: list[str] = field(default_factory=list)
    settle_seconds: float = 0.0  # draining the backlog once the producers stopped
    dagster_checks: dict[str, dict[str, bool]] = field(default_factory=dict)
    deduped: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        checks_ok = all(all(c.values()) for c in self.dagster_checks.values())
        return self.reconciliation.passed and checks_ok and not self.problems


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"files": 0}
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"files": len(values), "p50": at(0.5), "p99": at(0.99), "max": ordered[-1]}


class Soak:
    def __init__(
        self,
        options: SoakOptions,
        say: Callable[[str], None] = lambda line: print(line, flush=True),
    ) -> None:
        self.options = options
        self.say = say
        self.state = options.state_dir or Path(tempfile.mkdtemp(prefix="supermarket-soak-"))
        self.config = StackConfig(
            state_dir=self.state, stores=options.stores, skus=options.skus,
            history_per_day=options.history_per_day, history_days=options.history_days,
        )  # fmt: skip
        self.supervisor = Supervisor(self.config.logs_dir, lambda line: self.say(f"  {line}"))
        self.report = SoakReport(options={k: str(v) for k, v in options.__dict__.items()})
        self.bad: list[bad_files.BadFile] = []
        self.stop = threading.Event()
        self._rss_peak = 0.0
        self.proxy_url = ""
        self.dagster_url = ""
        self.queue_url = self.dead_letter_url = ""
        self.env: dict[str, str] = {}
        self.runtime_env: dict[str, str] = {}

    # -- the stack ----------------------------------------------------------------------------

    def _start_stack(self, stack: contextlib.ExitStack) -> None:
        from supermarket_cli.dagster_instance import start_dagster, write_instance_config
        from supermarket_cli.stack import provision

        host, port = self.config.host, free_port()
        endpoint = f"http://{host}:{port}"
        aws = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIAL,
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIAL,
            tables.COMMIT_LOCK_VARIABLE: str(self.state / "commit.lock"),
            "LAKE_BUCKET": self.config.bucket,
            "GLUE_DATABASE": self.config.glue_database,
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            os.environ.pop(name, None)
        os.environ.update(aws)
        self.env = {**os.environ, **aws, WITHOUT_PANDAS_VARIABLE: "1"}  # as `up` runs them
        self.supervisor.start(children.moto(host, port, self.env))
        made = provision.provision(self.config)
        self.queue_url, self.dead_letter_url = made.queue_url, made.dead_letter_url
        self.env["ALERT_TOPIC_ARN"] = made.alert_topic_arn
        # Faults only on the pipeline's S3 calls: the runtimes reach S3 through the proxy, a
        # process of its own (its loop never waits for this one's threads).
        proxy_port = free_port()
        self.supervisor.start(children.fault_proxy(endpoint, host, proxy_port, self.env, 0.0))
        self.proxy_url = f"http://{host}:{proxy_port}"
        self.runtime_env = {**self.env, "AWS_ENDPOINT_URL_S3": self.proxy_url}
        self.supervisor.start(self._runtime_spec("lambda-runtime"))
        dagster_port = free_port()
        write_instance_config(self.config.dagster_home)
        _recover_runs_quickly(self.config.dagster_home)
        self.dagster_url = start_dagster(
            self.supervisor, self.config.dagster_home, host, dagster_port, self.env
        )
        self.say(f"stack up: moto {endpoint}, fault proxy {self.proxy_url}, Dagster "
                 f"{self.dagster_url}, state in {self.state}")  # fmt: skip

    def _runtime_spec(self, name: str) -> ChildSpec:
        spec = children.lambda_runtime(self.queue_url, self.runtime_env)
        return replace(spec, name=name)

    def _producer_specs(self) -> list[ChildSpec]:
        per = self.options.rate / self.options.producers
        fps = self.options.files_per_second / self.options.producers
        config = replace(self.config, tps=per, fps=fps)
        specs = []
        for n in range(self.options.producers):
            spec = children.payment_processor(config, self.env)
            spec.argv += ["--producer-id", f"soak{n}{os.urandom(2).hex()}"]
            specs.append(replace(spec, name=f"payment-processor-{n}"))
        return specs

    def _sample_rss(self) -> None:
        """The stack's RSS every 2 s: every process of every child's group, and this one."""
        while not self.stop.wait(2.0):
            groups = {c.pid: name for name, c in list(self.supervisor.children.items())
                      if c.is_running()}  # fmt: skip
            by_child: Counter = Counter(soak=psutil.Process().memory_info().rss)
            for process in psutil.process_iter(["pid", "memory_info"]):
                with contextlib.suppress(psutil.Error, OSError):
                    name = groups.get(os.getpgid(process.info["pid"]))
                    if name is not None and process.info["memory_info"]:
                        by_child[name] += process.info["memory_info"].rss
            self._rss_peak = max(self._rss_peak, sum(by_child.values()) / 2**20)
            peaks = self.report.peak_rss_by_child
            for name, rss in by_child.items():
                peaks[name] = max(peaks.get(name, 0.0), rss / 2**20)

    # -- the faults ---------------------------------------------------------------------------

    def _window(self, kind: str, detail: str = "") -> FaultWindow:
        window = FaultWindow(kind, time.time(), detail=detail)
        self.report.faults.append(window)
        self.say(f"fault: {kind} {detail}".rstrip())
        return window

    def s3_faults(self, on: bool) -> None:
        _get(f"{self.proxy_url}/_fault-proxy/rate/{self.options.fault_rate if on else 0.0}")

    def kill_runtime(self) -> None:
        """SIGKILL while a batch is in flight (messages received, not deleted)."""
        sqs = boto3.client("sqs")

        def in_flight() -> bool:
            attributes = sqs.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            return int(attributes["ApproximateNumberOfMessagesNotVisible"]) > 0

        with contextlib.suppress(TimedOut):
            wait_until(in_flight, 20, 0.02)
        child = self.supervisor.children["lambda-runtime"]
        window = self._window("runtime_sigkill", f"pid {child.pid}, a batch in flight")
        assert child.pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        window.end = time.time()

    def redeliver(self, count: int = 20) -> None:
        """Notifications of files already in the lake, each twice, in shuffled order."""
        lake = LakeBucket(self.config.bucket)
        done = [o for o in lake.listing(layout.RAW_INCOMING) if bad_files.BAD_PREFIX not in o.key]
        chosen = random.Random(len(done)).sample(done, min(count, len(done)))
        messages = []
        for stored in chosen * 2:
            record = {
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": LOCAL_REGION,
                "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": self.config.bucket},
                       "object": {"key": quote_plus(stored.key), "size": stored.size}},
            }  # fmt: skip
            messages.append(json.dumps({"Records": [record]}))
        random.Random(7).shuffle(messages)
        window = self._window("redelivered_notifications", f"{len(chosen)} files x 2, shuffled")
        sqs = boto3.client("sqs")
        for start in range(0, len(messages), 10):
            sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "MessageBody": body}
                         for i, body in enumerate(messages[start : start + 10])],
            )  # fmt: skip
        window.end = time.time()

    def bad_burst(self, tag: str) -> None:
        from simulator.reference import build_reference

        lake = LakeBucket(self.config.bucket)
        producer = [k for k in lake.keys(layout.RAW_INCOMING) if bad_files.BAD_PREFIX not in k]
        earlier = (producer[0], lake.read(producer[0])) if producer else None
        reference = build_reference(self.config.stores, self.config.skus, self.config.seed)
        files = bad_files.burst(reference, tag, self.options.large_file_bytes, earlier)
        window = self._window(
            "bad_files", f"{len(files)} files: " + ", ".join(f.kind for f in files)
        )
        for bad in files:
            lake.write(bad.key, bad.body)
        self.bad += files
        window.end = time.time()

    def second_runtime(self, seconds: float) -> None:
        window = self._window("second_runtime", f"for {seconds:.0f}s")
        self.supervisor.start(self._runtime_spec("lambda-runtime-2"))
        self.stop.wait(seconds)
        self.supervisor.stop("lambda-runtime-2")
        window.end = time.time()

    def backfill_with_daemon_kill(self, days: list[str]) -> None:
        from supermarket_cli.dagster_graphql import DagsterGraphQL, DagsterGraphQLError
        from supermarket_cli.stack.loading import history_run_config

        dagster = DagsterGraphQL(self.dagster_url)
        backfill = dagster.launch_backfill(
            HISTORY_ASSETS, days, run_config=history_run_config(self.config), title="soak"
        )
        window = self._window("dagster_daemon_sigkill", f"backfill {backfill} of {len(days)} days")

        def running() -> bool:
            return any(r["status"] in ("STARTING", "STARTED")
                       for r in dagster.backfill_progress(backfill).runs)  # fmt: skip

        with contextlib.suppress(TimedOut):
            wait_until(running, 120, 0.2)
        daemon = self.supervisor.children["dagster-daemon"]
        assert daemon.pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.pid, signal.SIGKILL)
        try:
            state = dagster.wait_backfill(backfill, 600)
            outcome = f"backfill {backfill}: {state['status']}, {state['done']} of {len(days)} days"
        except (DagsterGraphQLError, TimeoutError) as exc:
            # The runs are the code server's processes and carry on; should one fail anyway,
            # the days are launched again, as an operator would, and must land exactly once.
            outcome = f"backfill {backfill} after the kill: {exc}"[:300]
            again = dagster.launch_backfill(
                HISTORY_ASSETS, days, run_config=history_run_config(self.config), title="soak-again"
            )
            state = dagster.wait_backfill(again, 600)
            outcome += f"; relaunched as {again}: {state['status']}"
        window.end = time.time()
        self.report.backfills.append(outcome)
        self.say(f"  {outcome}")

    # -- the run ------------------------------------------------------------------------------

    def _schedule(self, started: float, seconds: float) -> list[tuple[float, str]]:
        """(seconds from the start, action) for every fault of every cycle."""
        steps = []
        cycles = max(1, round(seconds / CYCLE_SECONDS))
        length = seconds / cycles
        for n in range(cycles):
            base = n * length
            steps += [
                # First: the backfill's run takes its process start and the history's days, so
                # it overlaps the other faults instead of outlasting the producers.
                (base + 0.02 * length, "dagster"),
                (base + 0.10 * length, "s3_on"),
                (base + 0.35 * length, "s3_off"),
                (base + 0.38 * length, "kill_runtime"),
                (base + 0.42 * length, "redeliver"),
                (base + 0.50 * length, f"bad_burst:{n}"),
                (base + 0.60 * length, "second_runtime"),
            ]
        return sorted(steps)

    def _act(self, action: str, length: float) -> None:
        if action == "s3_on":
            self._s3_window = self._window("s3_errors", f"{self.options.fault_rate:.0%} of calls")
            self.s3_faults(True)
        elif action == "s3_off":
            self.s3_faults(False)
            self._s3_window.end = time.time()
        elif action == "kill_runtime":
            self.kill_runtime()
        elif action == "redeliver":
            self.redeliver()
        elif action.startswith("bad_burst"):
            self.bad_burst(f"{action.split(':')[1]}{os.urandom(2).hex()}")
        elif action == "second_runtime":
            threading.Thread(target=self.second_runtime, args=(0.12 * length,), daemon=True).start()
        elif action == "dagster":
            today = datetime.now(UTC).date()
            days = [(today - timedelta(days=d)).isoformat()
                    for d in range(self.options.history_days, 0, -1)]  # fmt: skip
            thread = threading.Thread(target=self._dagster_safely, args=(days,), daemon=True)
            self._backfills.append(thread)
            thread.start()

    def _dagster_safely(self, days: list[str]) -> None:
        try:
            self.backfill_with_daemon_kill(days)
        except Exception as exc:
            self.report.problems.append(f"backfill: {exc}"[:400])

    def _load_reference(self) -> None:
        from supermarket_cli.dagster_graphql import DagsterGraphQL
        from supermarket_cli.stack.loading import REFERENCE_ASSETS, reference_run_config

        dagster = DagsterGraphQL(self.dagster_url)
        dagster.wait_run(dagster.launch_assets(REFERENCE_ASSETS,
                                               reference_run_config(self.config)), 300)  # fmt: skip

    def run(self) -> SoakReport:
        seconds = self.options.minutes * 60
        clock = time.monotonic()
        self._backfills: list[threading.Thread] = []
        with contextlib.ExitStack() as stack:
            stack.callback(self.supervisor.stop_all)
            self._start_stack(stack)
            threading.Thread(target=self._sample_rss, daemon=True).start()
            for spec in self._producer_specs():  # they start up while the reference data loads
                self.supervisor.start(spec)
            self._load_reference()
            self.say(f"driving: {self.options.producers} producers, {self.options.rate:g} "
                     f"transactions/s, {self.options.minutes:g} min")  # fmt: skip
            lake = LakeBucket(self.config.bucket)
            with contextlib.suppress(TimedOut):  # the clock starts with the first live file
                wait_until(lambda: lake.keys(layout.RAW_INCOMING, limit=1), 120, 0.5)
            started = time.monotonic()
            steps = self._schedule(started, seconds)
            cycle = seconds / max(1, round(seconds / CYCLE_SECONDS))
            while time.monotonic() - started < seconds:
                self.supervisor.check()
                while steps and time.monotonic() - started >= steps[0][0]:
                    _, action = steps.pop(0)
                    self._act(action, cycle)
                time.sleep(0.2)
            for _, action in steps:  # a short run's last steps, not to be skipped
                self._act(action, cycle)
            self._settle()
            deadline = time.monotonic() + 900
            while any(t.is_alive() for t in self._backfills) and time.monotonic() < deadline:
                self.supervisor.check()  # the daemon killed late is restarted meanwhile
                time.sleep(0.5)
            self._after(stack)
        self.report.seconds = time.monotonic() - clock
        return self.report

    def _settle(self) -> None:
        from supermarket_cli.dead_letters import replay_dead_letters
        from supermarket_cli.stack import provision

        self.say("settling: producers stopped, faults off, draining the queue")
        for name in [n for n in self.supervisor.children if n.startswith("payment-processor")]:
            self.supervisor.stop(name)
        self.s3_faults(False)

        def drained() -> bool:
            self.supervisor.check()
            return provision.queue_depth(self.queue_url) == 0

        for _ in range(2):  # drain, replay the dead letters, drain again
            self._drain(drained)
            time.sleep(2)
            self._drain(drained)
            dead = provision.queue_depth(self.dead_letter_url)
            if not dead:
                break
            self.report.dead_lettered += dead
            replayed = replay_dead_letters(self.queue_url, self.dead_letter_url)
            self.report.replayed += replayed.replayed
            self.say(f"  replayed {replayed.replayed} dead letters ({replayed.kept} kept)")

    def _drain(self, drained: Callable[[], bool]) -> None:
        """Waits for the queue to empty while it keeps shrinking: a backlog is worked off, a
        queue stuck for SETTLE_SECONDS is a problem in the report, not a crash."""
        from supermarket_cli.stack import provision

        began, best, best_at = time.monotonic(), None, time.monotonic()
        while not drained():
            depth = provision.queue_depth(self.queue_url)
            if best is None or depth < best:
                best, best_at = depth, time.monotonic()
            if time.monotonic() - best_at > SETTLE_SECONDS:
                self.report.problems.append(f"the queue stopped draining at {depth} messages")
                return
            time.sleep(1)
        self.report.settle_seconds += time.monotonic() - began

    def _after(self, stack: contextlib.ExitStack) -> None:
        self.stop.set()
        try:
            self._compact_days()
        except Exception as exc:  # reported, and the reconciliation still runs
            self.report.problems.append(f"the final dedupe and compaction: {exc!r}"[:400])
        lake = LakeBucket(self.config.bucket)
        lake_tables = tables.LakeTables(tables.glue_catalog(), self.config.glue_database)
        result, read = reconcile(lake, lake_tables, self.bad)
        self.report.reconciliation = result
        self.report.proxy = json.loads(_get(f"{self.proxy_url}/_fault-proxy/stats"))
        self.report.restarts = {n: len(c.history) for n, c in self.supervisor.children.items()
                                if c.history}  # fmt: skip
        self.report.redeliveries = self._redeliveries()
        self.report.latency = self._latency(read["audits"])
        self.report.peak_rss_mib = self._rss_peak
        self.report.lake_objects = len(lake.keys(layout.LAKE))
        self.report.snapshots = {
            name: len(lake_tables.current(name).metadata.snapshots)
            for name in tables.ICEBERG_TABLES
        }
        self.report.dagster_checks = self._day_checks(read["audits"])

    def _compact_days(self) -> None:
        """Every day the soak wrote, deduped and compacted as `compacted_days` does it (its
        schedule runs it in the stack's Dagster too, every 5 minutes for the open day): the
        dedupe of ids landed twice from different sources is there."""
        from supermarket_dagster import compaction, dedupe
        from supermarket_dagster.resources import LakeResource

        lake = LakeResource(bucket=self.config.bucket, database=self.config.glue_database)
        today = datetime.now(UTC).date()
        days = [today - timedelta(days=d) for d in range(self.options.history_days + 1)]
        totals: Counter = Counter()
        for day in days:
            done = dedupe.dedupe_day(lake.tables(), lake.objects(), day)
            totals.update({k: v for k, v in done.metadata().items()})
            for table in ("transactions", "transaction_items"):
                compaction.compact_day(lake.tables(), table, day)
        self.report.deduped = dict(totals)

    def _redeliveries(self) -> int:
        count = 0
        for log in self.config.logs_dir.glob("lambda-runtime*.log"):
            text = log.read_text(errors="replace")
            count += text.count('"replaced": true') + text.count('"unchanged": true')
        return count

    def _latency(self, audits: list[Any]) -> dict[str, dict[str, float]]:
        """Audit lag (S3 event -> rows committed) of each source's first ingestion, inside a
        fault window (or AFTER_EFFECT_SECONDS after one) or outside."""
        first: dict[str, Any] = {}
        for record in sorted(audits, key=lambda r: r.finished_at):
            if record.event_time and record.source_key.startswith(layout.RAW_INCOMING):
                first.setdefault(record.source_key, record)
        faults = self.report.faults
        windows = [(w.start, w.ended + AFTER_EFFECT_SECONDS) for w in faults]
        inside, outside, slow = [], [], []
        for record in first.values():
            at = datetime.fromisoformat(record.event_time.replace("Z", "+00:00")).timestamp()
            lag = record.lag_seconds
            if any(a <= at <= b for a, b in windows):
                inside.append(lag)
                continue
            outside.append(lag)
            # The faults either side of the file's S3 event: a file landing slowly outside the
            # windows is one still behind the last fault's backlog, or in flight at the next.
            after = [w for w in faults if w.start >= at]
            before = [w for w in faults if w.ended < at]
            nearest = min(after, key=lambda w: w.start) if after else None
            last = max(before, key=lambda w: w.ended) if before else None
            slow.append({
                "source_key": record.source_key,
                "lag_seconds": lag,
                "previous_fault": last.kind if last else None,
                "previous_fault_ended_seconds_before": (
                    round(at - last.ended, 2) if last else None),
                "next_fault": nearest.kind if nearest else None,
                "next_fault_after_seconds": round(nearest.start - at, 2) if nearest else None,
            })  # fmt: skip
        slow.sort(key=lambda f: f["lag_seconds"], reverse=True)
        self.report.slowest_outside_faults = slow[:10]
        return {"outside_faults": _quantiles(outside), "in_fault_windows": _quantiles(inside)}

    def _day_checks(self, audits: list[Any]) -> dict[str, dict[str, bool]]:
        """The Dagster day checks (defs/history/checks.py), run on every day the soak touched."""
        import dagster as dg

        from supermarket_dagster.defs.history.checks import DAY_CHECKS, day_results
        from supermarket_dagster.resources import LakeResource

        days = sorted({d for r in audits for d in r.rows_per_day})
        keys = [dg.AssetCheckKey(spec.asset_key, spec.name) for spec in DAY_CHECKS]
        lake = LakeResource(bucket=self.config.bucket, database=self.config.glue_database)
        results: dict[str, dict[str, bool]] = {}
        for day in days:
            results[day] = {}
            for r in day_results(lake, date.fromisoformat(day), keys):
                name = f"{r.key.asset_key.path[-1]}.{r.key.name}"
                results[day][name] = r.passed
                if not r.passed:
                    shown = {k: getattr(v, "value", v) for k, v in r.metadata.items()}
                    self.report.problems.append(f"check {name} dt={day}: {shown}"[:600])
        return results

    def cleanup(self) -> None:
        if self.options.state_dir is None and not self.options.keep_state:
            shutil.rmtree(self.state, ignore_errors=True)


def _recover_runs_quickly(dagster_home: Path) -> None:
    """The soak's instance: a run left starting by a killed daemon is failed after a minute, not
    five, and a failed run is retried (twice), so a backfill finishes on its own."""
    path = dagster_home / "dagster.yaml"
    config = json.loads(path.read_text())
    config["run_monitoring"]["start_timeout_seconds"] = 60
    config["run_retries"] = {"enabled": True, "max_retries": 2}
    path.write_text(json.dumps(config, indent=2) + "\n")


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def format_report(report: SoakReport) -> str:
    r = report.reconciliation
    lines = [
        f"soak: {report.options['minutes']} min at {report.options['rate']} transactions/s, "
        f"{report.options['producers']} producers, {report.seconds:.0f}s in all",
        f"  produced     {r.produced:,} transactions ({r.producer_files:,} producer files, "
        f"{len(report.faults and [f for f in report.faults if f.kind == 'bad_files'])} bad bursts)",
        f"  landed       {r.landed:,} distinct ids ({r.transaction_rows:,} transaction rows, "
        f"{r.item_rows:,} item rows)",
        f"  quarantined  {r.quarantined:,} records, {r.quarantine_without_reason} without a reason",
        f"  duplicated   {r.duplicated} ids, {r.duplicated_items} item lines",
        f"  missing      {r.missing}",
        f"  unexpected   {r.unexpected}",
        f"  redeliveries {report.redeliveries} (sources delivered again: found unchanged, or "
        "replaced)",
        f"  dead-lettered {report.dead_lettered}, replayed {report.replayed}",
        f"  backlog      {report.settle_seconds:.0f}s to drain the queue after the producers",
    ]
    for name, q in report.latency.items():
        if q.get("files"):
            lines.append(f"  latency {name}: {q['files']} files, p50 {q['p50']:.2f}s, "
                         f"p99 {q['p99']:.2f}s, max {q['max']:.2f}s")  # fmt: skip
    for f in report.slowest_outside_faults[:5]:
        ago = f.get("previous_fault_ended_seconds_before")
        last = f"{f['previous_fault']} ended {ago:.1f}s before" if ago is not None else "none"
        ahead = f["next_fault_after_seconds"]
        nxt = f"{f['next_fault']} {ahead:.1f}s after" if ahead is not None else "none"
        lines.append(f"    slow outside: {f['lag_seconds']:.2f}s {f['source_key']} "
                     f"(fault before its event: {last}; next: {nxt})")  # fmt: skip
    lines += [
        f"  peak RSS     {report.peak_rss_mib:,.0f} MiB (every process of the stack, summed); "
        + ", ".join(
            f"{name} {mib:,.0f}"
            for name, mib in sorted(report.peak_rss_by_child.items(), key=lambda kv: -kv[1])[:6]
        ),
        f"  lake         {report.lake_objects:,} objects under lake/; snapshots "
        + ", ".join(f"{t} {n}" for t, n in report.snapshots.items()),
        f"  S3 proxy     {report.proxy.get('calls', 0):,} calls, faults "
        f"{dict(report.proxy.get('faults', {}))}",
        f"  restarts     {report.restarts}",
    ]
    kinds = Counter(f.kind for f in report.faults)
    lines.append(f"  faults       {dict(kinds)}")
    for outcome in report.backfills:
        lines.append(f"  {outcome}")
    if report.deduped:
        lines.append(f"  final dedupe pass {report.deduped}")
    failed = {d: [k for k, ok in c.items() if not ok] for d, c in report.dagster_checks.items()}
    failed = {d: ks for d, ks in failed.items() if ks}
    lines.append(f"  day checks   {len(report.dagster_checks)} days, "
                 + ("all passed" if not failed else f"FAILED {failed}"))  # fmt: skip
    for rule, count in r.quarantine_reasons.most_common(12):
        lines.append(f"    {count:6,}  {rule}")
    for problem in r.bad_files_wrong + report.problems:
        lines.append(f"  PROBLEM {problem}")
    for name, sample in r.samples.items():
        lines.append(f"  {name} e.g. {', '.join(sample)}")
    lines.append("  PASSED" if report.passed else "  FAILED")
    return "\n".join(lines)


def soak(options: SoakOptions) -> int:
    runner = Soak(options)
    try:
        report = runner.run()
    finally:
        runner.cleanup()
    print(format_report(report), flush=True)
    out = os.environ.get("SOAK_REPORT_JSON")
    if out:
        Path(out).write_text(json.dumps(_jsonable(report), indent=2, default=str))
    return 0 if report.passed else 1


def _jsonable(report: SoakReport) -> dict[str, Any]:
    from dataclasses import asdict

    body = asdict(report)
    # asdict rebuilds a Counter from (key, count) pairs, counting the pairs: keep the counts.
    body["reconciliation"]["quarantine_reasons"] = dict(report.reconciliation.quarantine_reasons)
    body["passed"] = report.passed
    return body
