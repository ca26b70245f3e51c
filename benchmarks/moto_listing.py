"""Listing a day's raw logs on the local AWS: the stack's moto server with its page-at-a-time
ListObjectsV2 (supermarket_cli/moto_listing.py) against the same server answering with moto's
own, in one run.

    .venv/bin/python benchmarks/moto_listing.py [--others 40000] [--day 10000] [--rounds 2]

Each server runs as its own process on loopback, one after the other, alternating for --rounds.
Into a fresh bucket go --others objects elsewhere (as the lake's files and audit records sit
beside the raw logs) and --day objects under one day's raw prefix; then the day's prefix is
listed whole, through boto3's paginator (1,000 keys a page) on the stack's own client
(`lake_contract.s3.aws_client`), as the day checks list it. Printed:
the listing's wall time and the server's CPU for it, and a page's median.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from supermarket_cli.processes import free_port, http_ok, wait_until  # noqa: E402

DAY_PREFIX = "raw/incoming/dt=2026-03-01/"
SERVERS = {
    "moto's own listing": "from supermarket_cli import moto_listing, moto_server; "
    "moto_listing.install = lambda: None; moto_server.main()",
    "a page at a time": "from supermarket_cli import moto_server; moto_server.main()",
}


def measure(code: str, others: int, day: int) -> dict[str, float]:
    from lake_contract.s3 import aws_client

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-c", code, "-H", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: http_ok(f"{endpoint}/moto-api/"), 30, 0.1, "moto never answered")
        os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench",
                          AWS_SECRET_ACCESS_KEY="bench")  # fmt: skip
        s3 = aws_client("s3", endpoint)  # the stack's client: its listing times parsed fast
        s3.create_bucket(Bucket="listing")
        keys = [f"lake/transactions/data/{n:08d}.parquet" for n in range(others)]
        keys += [f"{DAY_PREFIX}till-{n % 7}-{n:08d}.ndjson" for n in range(day)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: s3.put_object(Bucket="listing", Key=k, Body=b"x"), keys))
        process = psutil.Process(server.pid)
        cpu = sum(process.cpu_times()[:2])
        began = time.perf_counter()
        pages, listed, clock = [], 0, time.perf_counter()
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket="listing", Prefix=DAY_PREFIX
        ):
            listed += page.get("KeyCount", 0)
            pages.append(time.perf_counter() - clock)
            clock = time.perf_counter()
        wall = time.perf_counter() - began
        assert listed == day, f"listed {listed} of {day}"
        return {
            "wall": wall,
            "cpu": sum(process.cpu_times()[:2]) - cpu,
            "page": statistics.median(pages),
            "pages": len(pages),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--others", type=int, default=40_000)
    parser.add_argument("--day", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}; {args.others:,} objects elsewhere, "
          f"{args.day:,} under {DAY_PREFIX}")  # fmt: skip
    results: dict[str, list[dict[str, float]]] = {name: [] for name in SERVERS}
    for round_ in range(args.rounds):
        for name, code in SERVERS.items():
            result = measure(code, args.others, args.day)
            results[name].append(result)
            print(f"  round {round_ + 1}, {name}: the day listed in {result['wall']:.2f} s "
                  f"({result['pages']:.0f} pages, median {result['page'] * 1000:.0f} ms), "
                  f"server CPU {result['cpu']:.2f} s", flush=True)  # fmt: skip
    medians = {name: statistics.median(r["wall"] for r in runs) for name, runs in results.items()}
    base, ours = medians["moto's own listing"], medians["a page at a time"]
    print(f"median: moto's own {base:.2f} s, a page at a time {ours:.2f} s "
          f"({base / ours:.1f}x faster); load average {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
