"""The running stack: PUT -> visible in a DuckDB query, and the stack's memory and CPU.

    .venv/bin/python benchmarks/stack.py [--seconds 120] [--idle-seconds 30] [--probe-rate 1]
                                         [--history-days 3] [-- extra `supermarket up` flags]

Starts `supermarket up` as a user does (its own state folder, free ports, the default live
rate unless flags say otherwise) and waits until it has loaded. Then:

- idle: the payment processor is paused (SIGSTOP) for --idle-seconds; everything else runs
  (Dagster's daemon and sensors, the Lambda runtime polling, moto). RSS and CPU are summed over
  every process of the stack (psutil, over the children's process groups).
- load: the feed runs at its rate for --seconds. Beside it, a probe PUTs a one-transaction file
  to raw/incoming/ --probe-rate times a second, and a DuckDB engine (the `supermarket query`
  engine) queries today's transactions for the probes' source keys back to back; a probe's
  latency is from the start of its PUT to the end of the first query that returns it, split by
  the probe's audit record into: PUT -> the handler starts on it (notification, queue, poll),
  -> committed (read, transform, lock, commit), -> returned by a query. The feed's own files
  are measured too, from their audit records (S3 event -> rows written).

Goal: p50 < 0.5 s, p99 < 1.5 s, the whole stack < 2 GiB RSS. RSS is summed per process, so pages
shared between processes count more than once: the figure is an upper bound.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from supermarket_cli.processes import (  # noqa: E402 (after the path is set)
    group_members,
    wait_until,
)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def stack_processes(supervisor: int, groups: dict[int, str]) -> dict[int, tuple[str, float, int]]:
    """pid -> (stack process it belongs to, CPU seconds so far, RSS bytes) for the supervisor
    and every live process in the children's process groups (Dagster's run workers included)."""
    owners = {supervisor: "supervisor"}
    for group, name in groups.items():
        owners |= dict.fromkeys(group_members(group), name)
    found = {}
    for pid, owner in owners.items():
        try:
            process = psutil.Process(pid)
            with process.oneshot():
                cpu = process.cpu_times()
                found[pid] = (owner, cpu.user + cpu.system, process.memory_info().rss)
        except psutil.Error:  # it ended between the listing and now
            continue
    return found


def measure(supervisor: int, groups: dict[int, str], seconds: float) -> dict[str, Any]:
    """CPU (cores) and RSS over a window, sampled every second. A process's CPU counts from
    its first sample (or its start, if it started in the window) to its last."""
    first = {pid: cpu for pid, (_, cpu, _) in stack_processes(supervisor, groups).items()}
    last: dict[int, float] = {}
    rss_samples: list[float] = []
    per_owner: dict[str, list[float]] = {}
    pids_seen: set[int] = set()
    owners_seen: dict[int, str] = {}
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        time.sleep(1)
        sample = stack_processes(supervisor, groups)
        pids_seen |= set(sample)
        rss_samples.append(sum(rss for _, _, rss in sample.values()))
        owners: dict[str, float] = {}
        for pid, (owner, cpu, rss) in sample.items():
            last[pid] = cpu
            owners_seen[pid] = owner
            owners[owner] = owners.get(owner, 0) + rss
        for owner, rss in owners.items():
            per_owner.setdefault(owner, []).append(rss)
    elapsed = time.monotonic() - began
    cpu = sum(cpu - first.get(pid, 0.0) for pid, cpu in last.items())
    cpu_by_owner: dict[str, float] = {}
    for pid, seconds in last.items():
        owner = owners_seen[pid]
        cpu_by_owner[owner] = cpu_by_owner.get(owner, 0.0) + (seconds - first.get(pid, 0.0))
    return {
        "cpu_cores": cpu / elapsed,
        "cpu_by_owner": {o: seconds / elapsed for o, seconds in cpu_by_owner.items()},
        "rss_mean": sum(rss_samples) / len(rss_samples),
        "rss_peak": max(rss_samples),
        "processes": len(pids_seen),
        "per_owner": {o: sum(v) / len(rss_samples) for o, v in per_owner.items()},
    }


def start_stack(args: argparse.Namespace, state: Path) -> tuple[subprocess.Popen, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DAGSTER_"))}
    env |= {
        "SUPERMARKET_STATE": str(state),
        "SUPERMARKET_MOTO_PORT": "0",
        "SUPERMARKET_DAGSTER_PORT": "0",
        "SUPERMARKET_DASHBOARD_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "supermarket_cli.main",
            "up",
            "--reset",
            "--history-days",
            str(args.history_days),
            *args.up_flags,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    began = time.monotonic()
    for line in up.stdout:
        lines.append(line.rstrip())
        print(f"  [{time.monotonic() - began:5.1f}s] {line.rstrip()}", flush=True)
        if line.startswith("loaded;") or "loading failed" in line:
            break
    else:
        raise SystemExit("the stack exited before loading")
    threading.Thread(
        target=lambda: [lines.append(x.rstrip()) for x in up.stdout], daemon=True
    ).start()
    return up, lines


def probe_latency(
    args: argparse.Namespace,
    bucket: str,
    stop: threading.Event,
    parts: dict[str, list[float]],
    probes: list[tuple[float, float, tuple[float, float, float]]],
) -> list[float]:
    """Each probe's latency; `parts` gets them split by their audit records, and `probes` each
    one's (put time, latency, (queue, handler, reader))."""
    import boto3

    from supermarket_queries.engine import LocalEngine

    s3 = boto3.client("s3")
    engine = LocalEngine(f"s3://{bucket}")
    put_at: dict[str, float] = {}
    lock = threading.Lock()
    token = os.urandom(3).hex()

    def feed() -> None:
        n = 0
        while not stop.is_set():
            now = datetime.now(UTC)
            key = f"raw/incoming/dt={now.date()}/bench-{token}-{n:05d}.ndjson"
            body = json.dumps(
                {
                    "transaction_id": f"B{token}-{n}",
                    "store_id": "STORE0001",
                    "transaction_datetime": now.isoformat(),
                    "payment_method": "card",
                    "items": [{"sku_id": "SKU00001", "quantity": 1, "unit_price": 1.0}],
                }
            ).encode()
            began = time.time()
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            with lock:
                put_at[key] = began
            n += 1
            stop.wait(1 / args.probe_rate)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    latencies: dict[str, float] = {}
    query_seconds: list[float] = []
    prefix = f"raw/incoming/dt={datetime.now(UTC).date()}/bench-{token}-"
    sql = (
        f"SELECT DISTINCT source_key FROM transactions WHERE dt = current_date "
        f"AND starts_with(source_key, '{prefix}')"
    )
    give_up = None
    while True:
        began = time.time()
        seen = engine.query(sql).column("source_key").to_pylist()
        done = time.time()
        query_seconds.append(done - began)
        with lock:
            for key in seen:
                if key in put_at and key not in latencies:
                    latencies[key] = done - put_at[key]
            caught_up = len(latencies) >= len(put_at)
        if stop.is_set():
            give_up = give_up or done + 30  # a probe not seen 30 s after the end is missing
            if caught_up or done > give_up:
                break
    missing = len(put_at) - len(latencies)
    p50, p99 = percentile(query_seconds, 0.5), percentile(query_seconds, 0.99)
    print(
        f"  DuckDB queries: {len(query_seconds)}, each p50 {p50:.2f} s, p99 {p99:.2f} s "
        "(the Iceberg snapshot of today, planned from its manifest)"
    )
    print(f"  probes: {len(put_at)} put, {len(latencies)} seen, {missing} missing")
    for record in audit_records(bucket, lambda source: source in latencies):
        source = record["source_key"]
        started = datetime.fromisoformat(record["started_at"]).timestamp()
        finished = datetime.fromisoformat(record["finished_at"]).timestamp()
        split = (started - put_at[source], finished - started,
                 put_at[source] + latencies[source] - finished)  # fmt: skip
        for name, seconds in zip(("queue", "handler", "reader"), split, strict=True):
            parts.setdefault(name, []).append(seconds)
        probes.append((put_at[source], latencies[source], split))
    return list(latencies.values())


def dagster_runs(url: str) -> list[tuple[str, float, float]]:
    """(job and partition, start, end) of the stack's latest Dagster runs."""
    from supermarket_cli.dagster_graphql import DagsterGraphQL

    data = DagsterGraphQL(url).query(
        "{ runsOrError(limit: 200) { ... on Runs { results { jobName startTime endTime "
        "tags { key value } } } } }"
    )
    runs = []
    for run in data["runsOrError"]["results"]:
        if run["startTime"] is None:
            continue
        tags = {t["key"]: t["value"] for t in run["tags"]}
        name = run["jobName"] + (f" {tags['dagster/partition']}" if "dagster/partition" in tags
                                 else "")  # fmt: skip
        runs.append((name, run["startTime"], run["endTime"] or time.time()))
    return runs


def print_slowest(
    probes: list[tuple[float, float, tuple[float, float, float]]],
    runs: list[tuple[str, float, float]],
    began: float,
    count: int = 5,
) -> None:
    """The slowest probes, when they were put, their split, and the Dagster runs beside them."""
    print(
        "\nslowest probes (seconds into the load phase; queue / handler / reader), with the "
        "Dagster runs in progress from 5 s before the put to the probe's end:"
    )
    for put, latency, split in sorted(probes, key=lambda p: -p[1])[:count]:
        beside = sorted({name for name, start, end in runs
                         if start <= put + latency and end >= put - 5})  # fmt: skip
        parts = " / ".join(f"{x:.2f}" for x in split)
        print(f"  {latency:.2f} s at {put - began:5.1f} s ({parts}): {', '.join(beside) or '-'}")


def audit_records(bucket: str, wanted: Any) -> list[dict[str, Any]]:
    """The audit records of the sources `wanted(source_key)` accepts."""
    import boto3

    s3 = boto3.client("s3")
    records = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="audit/"):
        for item in page.get("Contents", []):
            record = json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            if wanted(record["source_key"]):
                records.append(record)
    return records


def audit_lags(bucket: str, since: str) -> list[float]:
    """The feed's own files: lag_seconds (S3 event -> rows written) of their audit records."""

    def feed(source: str) -> bool:
        return source.startswith("raw/incoming/") and "/bench-" not in source

    live = [r for r in audit_records(bucket, feed)
            if r["started_at"] >= since and r["lag_seconds"] is not None]  # fmt: skip
    return [r["lag_seconds"] for r in live]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--settle-seconds", type=float, default=60.0, help="before idle")
    parser.add_argument("--probe-rate", type=float, default=1.0, help="probe files per second")
    parser.add_argument("--history-days", type=int, default=3)
    parser.add_argument("up_flags", nargs="*", help="more `supermarket up` flags, after --")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="supermarket-stack-") as work:
        state = Path(work) / "state"
        print("starting the stack ...")
        up, lines = start_stack(args, state)
        try:

            def read_record() -> dict[str, Any]:
                return json.loads((state / "stack.json").read_text())

            # The feed starts just after "loaded".
            wait_until(lambda: "payment-processor" in read_record()["processes"], 10, 0.1,
                       "the feed's pid never reached stack.json")  # fmt: skip
            record = read_record()
            endpoint = record["urls"]["aws"]
            groups = {pid: name for name, pid in record["processes"].items() if pid}
            feed_pid = record["processes"]["payment-processor"]
            bucket = re.search(r"bucket s3://([\w.-]+)", "\n".join(lines))[1]
            os.environ.update(
                AWS_ENDPOINT_URL=endpoint,
                AWS_DEFAULT_REGION="us-east-1",
                AWS_ACCESS_KEY_ID="local",
                AWS_SECRET_ACCESS_KEY="local",
            )
            feed_line = next(x for x in lines if "live feed" in x).split("live feed")[1]
            feed_line = feed_line.removesuffix(", once loaded").strip()

            print(f"idle ({args.idle_seconds:.0f} s, feed paused) ...", flush=True)
            time.sleep(args.settle_seconds)  # the last files drain, the first check runs end
            os.killpg(feed_pid, signal.SIGSTOP)
            idle = measure(up.pid, groups, args.idle_seconds)
            os.killpg(feed_pid, signal.SIGCONT)

            print(f"load ({args.seconds:.0f} s, feed at {feed_line}, probes) ...", flush=True)
            since = datetime.now(UTC).isoformat()
            stop = threading.Event()
            result: dict[str, list[float]] = {}
            parts: dict[str, list[float]] = {}
            probes: list[tuple[float, float, tuple[float, float, float]]] = []
            prober = threading.Thread(
                target=lambda: result.setdefault(
                    "probe", probe_latency(args, bucket, stop, parts, probes)
                )
            )
            load_began = time.time()
            prober.start()
            load = measure(up.pid, groups, args.seconds)
            stop.set()
            prober.join()
            lags = audit_lags(bucket, since)
            runs = dagster_runs(record["urls"]["dagster"])
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(timeout=120)
    print("\nsupermarket up, defaults but --history-days", args.history_days, *args.up_flags)
    print("| phase | processes seen | CPU (cores) | RSS mean | RSS peak |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, figures in (("idle (feed paused)", idle), (f"load ({feed_line})", load)):
        mean, peak = figures["rss_mean"] / 2**20, figures["rss_peak"] / 2**20
        print(
            f"| {name} | {figures['processes']} | {figures['cpu_cores']:.2f} | "
            f"{mean:,.0f} MiB | {peak:,.0f} MiB |"
        )
    print()
    print("by process (with whatever each started): mean RSS under load; CPU idle / under load")
    owners = set(load["per_owner"]) | set(idle["cpu_by_owner"])
    for owner in sorted(owners, key=lambda o: -load["per_owner"].get(o, 0.0)):
        rss = load["per_owner"].get(owner, 0.0)
        cpu = (idle["cpu_by_owner"].get(owner, 0.0), load["cpu_by_owner"].get(owner, 0.0))
        print(f"  {owner:18} {rss / 2**20:,.0f} MiB; {cpu[0]:.2f} / {cpu[1]:.2f} cores")
    print()
    print("| latency | files | p50 | p95 | p99 | max |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, values in (
        ("probe PUT -> returned by a DuckDB query", result["probe"]),
        ("feed file S3 event -> rows written (audit)", lags),
    ):
        if values:
            p50, p95, p99 = (percentile(values, q) for q in (0.5, 0.95, 0.99))
            print(
                f"| {name} | {len(values)} | {p50:.2f} s | {p95:.2f} s | {p99:.2f} s | "
                f"{max(values):.2f} s |"
            )
    for name, what in (("queue", "  probe PUT -> handler starts"),
                       ("handler", "  handler starts -> committed"),
                       ("reader", "  committed -> returned by a query")):  # fmt: skip
        values = parts.get(name)
        if values:
            p50, p95, p99 = (percentile(values, q) for q in (0.5, 0.95, 0.99))
            print(f"| {what} | {len(values)} | {p50:.2f} s | {p95:.2f} s | {p99:.2f} s | "
                  f"{max(values):.2f} s |")  # fmt: skip
    print_slowest(probes, runs, load_began)
    latencies = result["probe"]
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    peak = max(idle["rss_peak"], load["rss_peak"])
    verdict = "met" if p50 < 0.5 and p99 < 1.5 and peak < 2 * 2**30 else "MISSED"
    print(
        f"\ngoal p50 < 0.5 s, p99 < 1.5 s, RSS < 2 GiB: {verdict}; "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
