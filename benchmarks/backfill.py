"""Backfill benchmark: the history backfill through a running Dagster webserver and daemon,
against `supermarket convert` on the same raw files, in one run.

    .venv/bin/python benchmarks/backfill.py                       # 30 days x 3,334
    .venv/bin/python benchmarks/backfill.py --transactions 10000000 --gzip --no-per-day-checks

moto server, dagster-webserver and dagster-daemon run as their own processes, as in the local
stack, on a fresh project-local instance. The raw logs (and the reference tables) are written
into moto by `supermarket generate`; then:

1. convert: the same files downloaded, and `supermarket convert` on them as a whole process;
2. backfill: transactions + transaction_items (and their day checks) over every day, launched
   over GraphQL as the UI launches a backfill, timed from launch to every partition
   materialized; the BackfillPolicy makes it one run per HISTORY_DAYS_PER_RUN days;
3. the same days again as range runs launched straight to the run queue, as `supermarket up`
   launches them (no wait for the backfill daemon's loop); this re-ingests every
   day, replacing its rows;
4. per-day check results: the range runs' own, per partition (counted from the webserver);
   then, to compare, each day's checks as a run of its own, as a checks sensor would request
   them after a range run (--no-per-day-checks skips this);

and the peak RSS of the stack during the backfill (webserver, daemon, the code server and
everything they start: the run workers), and of moto, which holds the lake in memory.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import boto3
import psutil

from lake_contract import layout, tables
from simulator.defaults import DEFAULT_HISTORY_DAYS_PER_RUN
from supermarket_cli.dagster_graphql import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    DagsterGraphQL,
    DagsterGraphQLError,
)
from supermarket_cli.dagster_instance import running_dagster, write_instance_config
from supermarket_cli.local_aws import provision_alert_topic
from supermarket_cli.processes import free_port
from supermarket_cli.stack.children import moto_server
from supermarket_cli.stack.loading import day_ranges

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "bench-backfill"
FIRST_DAY = date(2025, 6, 1)
TABLES = ["transactions", "transaction_items"]
CHECKS = [
    ("transactions", "raw_records_reconcile"),
    ("transactions", "transaction_id_unique"),
    ("transactions", "store_ids_known"),
    ("transactions", "total_matches_items"),
    ("transactions", "schema_matches"),
    ("transaction_items", "sku_ids_known"),
    ("transaction_items", "schema_matches"),
]
GIB = 1024**3


class PeakRss:
    """Samples the summed RSS of process trees every 0.2 s; keeps the peak of each group."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.peak = dict.fromkeys(groups, 0)
        self.worker_peak = 0  # the largest single run worker (a process running a run)
        self.worker_samples: list[tuple[float, int]] = []  # (time, largest run worker's RSS)
        # group -> its processes' RSS at its peak, by what they are
        self.at_peak: dict[str, dict[str, list[int]]] = {}
        self.peak_time: dict[str, float] = {}  # group -> when it peaked
        # (time, pid -> (what it is, its CPU seconds so far)), for the CPU each spent in a step
        self.cpu_samples: list[tuple[float, dict[int, tuple[str, float]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _tree(pid: int) -> list[psutil.Process]:
        try:
            root = psutil.Process(pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            largest_worker = 0
            cpu: dict[int, tuple[str, float]] = {}
            for name, pids in self.groups.items():
                total, parts = 0, {}
                for process in (p for pid in pids for p in self._tree(pid)):
                    try:
                        rss = process.memory_info().rss
                        # a run's process: the code server spawns it with multiprocessing
                        command = " ".join(process.cmdline())
                        if "multiprocessing.spawn" in command or "execute_run" in command:
                            largest_worker = max(largest_worker, rss)
                        times = process.cpu_times()
                    except psutil.Error:
                        continue
                    what = name if name != "stack" else _process_name(command)
                    cpu[process.pid] = (what, times.user + times.system)
                    total += rss
                    parts.setdefault(_process_name(command), []).append(rss)
                if total > self.peak[name]:
                    self.peak[name], self.at_peak[name] = total, parts
                    self.peak_time[name] = time.time()
            self.worker_peak = max(self.worker_peak, largest_worker)
            self.worker_samples.append((time.time(), largest_worker))
            self.cpu_samples.append((time.time(), cpu))

    def worker_peak_between(self, start: float, end: float) -> int:
        return max((rss for at, rss in self.worker_samples if start <= at <= end), default=0)

    def cpu_between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each kind of process spent from start to end (a process that started or
        ended within counts from its first sample or to its last)."""
        first: dict[int, float] = {}
        last: dict[int, tuple[str, float]] = {}
        for at, sample in self.cpu_samples:
            if at < start:
                first.update((pid, seconds) for pid, (_, seconds) in sample.items())
            elif at <= end:
                last.update(sample)
        spent: dict[str, float] = {}
        for pid, (what, seconds) in last.items():
            spent[what] = spent.get(what, 0.0) + seconds - first.get(pid, 0.0)
        return spent


def _mib(sizes: list[int]) -> str:
    """Processes' RSS summed, and each when there are several: '951 MiB (680 + 271)'."""
    each = f" ({' + '.join(f'{b / 2**20:.0f}' for b in sizes)})" if len(sizes) > 1 else ""
    return f"{sum(sizes) / 2**20:.0f} MiB{each}"


def _process_name(command: str) -> str:
    """What a process of the stack is, from its command line."""
    names = (("multiprocessing.spawn", "run worker"), ("execute_run", "run worker"),
             ("api grpc", "code server (grpc)"), ("code-server", "code server"),
             ("dagster-webserver", "webserver"), ("dagster-daemon", "daemon"))  # fmt: skip
    for marker, name in names:
        if marker in command:
            return name
    return "other"


def _cli(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "supermarket"), *args]


def generate(args: argparse.Namespace, days: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    out = ["--out", f"s3://{BUCKET}"]
    subprocess.run(_cli("generate", "reference", *out), env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    history = ["generate", "history", *out, "--transactions", str(args.transactions),
               "--start", days[0], "--end", days[-1], "--workers", "2"]  # fmt: skip
    subprocess.run(_cli(*history, *(["--gzip"] if args.gzip else [])), env=env, cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - began


def convert_days(s3, days: list[str], work: Path) -> tuple[float, float, str]:
    """`supermarket convert` on these days' raw logs, downloaded first, as one whole process:
    (download seconds, convert seconds, its summary line)."""
    source = work / "raw"
    source.mkdir(parents=True)
    began = time.perf_counter()
    for day in days:
        prefix = layout.day_prefix(layout.RAW_HISTORY, date.fromisoformat(day))
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        for obj in (o for page in pages for o in page.get("Contents", [])):
            target = source / f"{day}-{Path(obj['Key']).name}"
            s3.download_file(BUCKET, obj["Key"], str(target))
    downloaded = time.perf_counter() - began
    began = time.perf_counter()
    done = subprocess.run(_cli("convert", str(source), "--out", str(work / "out")), cwd=ROOT,
                          check=True, capture_output=True, text=True)  # fmt: skip
    return downloaded, time.perf_counter() - began, done.stdout.strip().splitlines()[-1]


def step_windows(dagster: DagsterGraphQL, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step of the run: (start, end), epoch seconds."""
    data = dagster.query(
        """query Steps($id: ID!) { runOrError(runId: $id) {
             ... on Run { stepStats { stepKey startTime endTime } } } }""",
        {"id": run_id},
    )
    return {s["stepKey"]: (s["startTime"], s["endTime"]) for s in data["runOrError"]["stepStats"]}


def _durations(windows: dict[str, tuple[float, float]]) -> dict[str, float]:
    return {step: end - start for step, (start, end) in windows.items()}


def run_times(dagster: DagsterGraphQL, run_id: str) -> dict[str, float]:
    data = dagster.query(
        """query Times($id: ID!) { runOrError(runId: $id) { ... on Run { creationTime
             stats { ... on RunStatsSnapshot { launchTime startTime endTime } } } } }""",
        {"id": run_id},
    )
    run = data["runOrError"]
    return {"creation": run["creationTime"], **run["stats"]}


def runs_beside(dagster: DagsterGraphQL, own: set[str], start: float, end: float) -> str:
    """The other runs that ran between start and end (sensors' and schedules'), by job."""
    data = dagster.query(
        """{ runsOrError(limit: 500) { ... on Runs { results { runId jobName startTime
             endTime assetSelection { path } } } } }"""
    )
    jobs: dict[str, int] = {}
    for run in data["runsOrError"]["results"]:
        began, ended = run["startTime"] or end, run["endTime"] or end
        if run["runId"] not in own and began <= end and ended >= start:
            assets = "+".join("/".join(a["path"]) for a in run["assetSelection"] or [])
            name = f"{run['jobName']}({assets})" if assets else run["jobName"]
            jobs[name] = jobs.get(name, 0) + 1
    return ", ".join(f"{n} x{c}" for n, c in sorted(jobs.items())) or "none"


def checked_days(dagster: DagsterGraphQL, days: list[str]) -> tuple[int, int]:
    """(days with a result of every check, days where every check passed)."""
    results = [dagster.check_results_by_partition(asset, name) for asset, name in CHECKS]
    have = [d for d in days if all(d in r for r in results)]
    return len(have), sum(1 for d in have if all(r[d] for r in results))


def per_day_check_runs(dagster: DagsterGraphQL, days: list[str]) -> tuple[float, int]:
    """Each day's checks as their own run (what a sensor would request after a range run):
    (seconds from the first launch to the last run finished, runs that failed)."""
    began = time.time()
    runs = [dagster.launch_checks(CHECKS, day) for day in days]
    failed = 0
    for run_id in runs:
        try:
            dagster.wait_run(run_id, timeout=3600)
        except DagsterGraphQLError as exc:  # e.g. the code server timing out under load
            failed += 1
            print(f"  check run failed: {str(exc)[:200]}")
    return time.time() - began, failed


def range_runs(dagster: DagsterGraphQL, days: list[str], per_run: int) -> tuple[float, list[str]]:
    """The days as range runs straight to the run queue: (launch -> all finished, run ids)."""
    launched = time.time()
    runs = [
        dagster.launch_assets(
            TABLES, tags={RANGE_START_TAG: first, RANGE_END_TAG: last}, with_checks=True
        )
        for first, last in day_ranges(days, per_run)
    ]
    for run_id in runs:
        dagster.wait_run(run_id, timeout=7200)
    return time.time() - launched, runs


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=100_020)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--gzip", action="store_true", help="raw logs as .ndjson.gz")
    parser.add_argument("--max-concurrent-runs", type=int, default=2)
    parser.add_argument("--per-day-checks", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--range-runs", action=argparse.BooleanOptionalAction, default=True,
                        help="also the days again as range runs straight to the queue")  # fmt: skip
    parser.add_argument("--keep", type=Path, help="keep the Dagster home and logs here")
    args = parser.parse_args()

    days = [(FIRST_DAY + timedelta(days=i)).isoformat() for i in range(args.days)]
    print(f"{args.transactions:,} transactions over {args.days} days; {load()}", flush=True)
    with moto_server() as endpoint:
        aws = {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}  # fmt: skip
        os.environ.update(aws)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        tables.create_tables(tables.glue_catalog(), f"s3://{BUCKET}")
        moto_pid = next(p.pid for p in psutil.Process().children() if "moto" in " ".join(
            p.cmdline()))  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="supermarket-backfill-") as tmp:
            work = args.keep or Path(tmp)
            env = {**os.environ, **aws, "LAKE_BUCKET": BUCKET, "HISTORY_START": days[0],
                   tables.COMMIT_LOCK_VARIABLE: str(work / "commit.lock"),
                   # As `up` gives it: without a topic the freshness sensor fails every tick.
                   "ALERT_TOPIC_ARN": provision_alert_topic(),
                   # On a loaded shared machine a code server can take over Dagster's default
                   # 60 s to start a run, and the run is then failed before it begins.
                   "DAGSTER_GRPC_TIMEOUT_SECONDS": "300"}  # fmt: skip
            generated = generate(args, days, env)
            print(f"generated in {generated:.1f} s ({load()})", flush=True)
            downloaded, converted, summary = convert_days(s3, days, work)
            print(f"convert: {converted:.2f} s (download first: {downloaded:.1f} s): {summary}")

            home = work / "dagster_home"
            write_instance_config(home, max_concurrent_runs=args.max_concurrent_runs)
            began = time.perf_counter()
            with running_dagster(home, free_port(), env, log_dir=work) as servers:
                dagster = DagsterGraphQL(servers.url)
                dagster.wait_ready(timeout=0)
                print(f"webserver ready in {time.perf_counter() - began:.1f} s ({load()})")
                # The code server's tree holds the run workers.
                stack = [servers.webserver.pid, servers.daemon.pid, servers.code_server.pid]
                groups = {"stack": stack, "moto": [moto_pid]}
                with PeakRss(groups) as rss:
                    launched = time.time()
                    backfill = dagster.launch_backfill(TABLES, days, title="benchmark")
                    result = dagster.wait_backfill(
                        backfill, timeout=7200, landed_step="history_backfill",
                        progress=lambda p: print(f"  [{time.time() - launched:5.1f}s] {p.line()}",
                                                 flush=True),
                    )  # fmt: skip
                    wall = time.time() - launched
                    direct, direct_runs = (
                        range_runs(dagster, days, DEFAULT_HISTORY_DAYS_PER_RUN)
                        if args.range_runs else (float("nan"), [])
                    )  # fmt: skip
                runs = result["runs"]
                times = [run_times(dagster, r["run_id"]) for r in runs]
                windows = [step_windows(dagster, r["run_id"]) for r in runs]
                steps = [_durations(w) for w in windows]
                checked, passed = checked_days(dagster, days)
                written = sum(
                    m["metadata"]["rows"]
                    for r in runs for m in dagster.run_materializations(r["run_id"])
                    if m["asset_key"] == "transactions"
                )  # fmt: skip
                beside = runs_beside(dagster, {r["run_id"] for r in runs} | set(direct_runs),
                                     launched, launched + wall)  # fmt: skip
                direct_times = [run_times(dagster, r) for r in direct_runs]
                direct_windows = [step_windows(dagster, r) for r in direct_runs]
                direct_steps = [_durations(w) for w in direct_windows]
                per_day = per_day_check_runs(dagster, days) if args.per_day_checks else None

    first_launch = min(t["launchTime"] for t in times)
    first_start = min(t["startTime"] for t in times)
    backfill_step = max(s.get("history_backfill", 0) for s in steps)
    checks_step = max(s.get("fact_table_day_checks", 0) for s in steps)
    print(f"\nbackfill: {len(days)} partitions in {len(runs)} runs, launch -> all materialized "
          f"{wall:.1f} s ({load()})")  # fmt: skip
    print(f"  the daemon's tick to the first run launched: {first_launch - launched:.1f} s; its "
          f"process start to executing: {first_start - first_launch:.1f} s")  # fmt: skip
    print(f"  longest history_backfill step {backfill_step:.1f} s, day checks step "
          f"{checks_step:.1f} s")  # fmt: skip
    print(f"  transactions written: {written:,} of {args.transactions:,} generated")
    print(f"  per-day check results from the range run: {checked}/{len(days)} days with every "
          f"check, {passed} all passed")  # fmt: skip
    if direct_runs:
        direct_start = min(t["startTime"] for t in direct_times) - min(
            t["launchTime"] for t in direct_times)  # fmt: skip
        direct_backfill = max(s.get("history_backfill", 0) for s in direct_steps)
        direct_checks = max(s.get("fact_table_day_checks", 0) for s in direct_steps)
        print(f"range runs straight to the queue: {len(direct_runs)} runs, launch -> all "
              f"materialized {direct:.1f} s; process start {direct_start:.1f} s; longest "
              f"backfill step {direct_backfill:.1f} s, checks {direct_checks:.1f} s")  # fmt: skip
    if per_day is not None:
        seconds, failed = per_day
        print(f"  the same checks as a run per day, after: {seconds:.1f} s more for "
              f"{len(days)} runs, {failed} failed (in the range run they cost "
              f"{checks_step:.1f} s)")  # fmt: skip
    stack_gib, moto_gib = rss.peak["stack"] / GIB, rss.peak["moto"] / GIB
    print(
        f"  peak RSS: stack {stack_gib:.2f} GiB (largest run worker "
        f"{rss.worker_peak / GIB:.2f} GiB); moto, holding the lake, {moto_gib:.2f} GiB"
    )
    by_step = {step: max(rss.worker_peak_between(*w[step]) for w in windows if step in w)
               for step in ("history_backfill", "fact_table_day_checks")}  # fmt: skip
    peaks = ", ".join(f"{step} {peak / GIB:.2f} GiB" for step, peak in by_step.items())
    print(f"  largest run worker by step: {peaks}")
    for step in ("history_backfill", "fact_table_day_checks"):
        spans = [w[step] for w in windows if step in w]
        if spans:
            spent = rss.cpu_between(min(s for s, _ in spans), max(e for _, e in spans))
            print(
                f"  CPU seconds during {step}: "
                + ", ".join(
                    f"{n} {c:.1f}"
                    for n, c in sorted(spent.items(), key=lambda i: -i[1])
                    if c >= 0.05
                )
            )
    parts = sorted(rss.at_peak.get("stack", {}).items(), key=lambda part: -sum(part[1]))
    peak_steps = [s for w in windows + direct_windows for s, (start, end) in w.items()
                  if start <= rss.peak_time.get("stack", 0) <= end]  # fmt: skip
    print(
        f"  the stack at its peak (in {', '.join(peak_steps) or 'no step'}): "
        + ", ".join(f"{n} {_mib(sizes)}" for n, sizes in parts)
    )
    print(f"  other runs during the backfill: {beside}")
    goal = 20.0 if args.transactions <= 100_020 else 1.5 * converted + 15
    print(f"\nconvert {converted:.2f} s; goal < {goal:.1f} s")
    measured = [("backfill (daemon)", wall)] + ([("range runs (queue)", direct)] if direct_runs
                                                 else [])  # fmt: skip
    for label, seconds in measured:
        verdict = "met" if seconds < goal else f"missed by {seconds - goal:.1f} s"
        print(f"  {label}: {seconds:.1f} s = {seconds / converted:.1f}x convert, convert + "
              f"{seconds - converted:.1f} s: {verdict}")  # fmt: skip
    print(f"  stack RSS < 1.5 GiB: {'met' if stack_gib < 1.5 else 'missed'} ({load()})")


if __name__ == "__main__":
    main()
