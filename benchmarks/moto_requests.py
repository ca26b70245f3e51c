"""The local AWS per request: moto's own server against the stack's (supermarket_cli.moto_server).

    .venv/bin/python benchmarks/moto_requests.py [--requests 300] [--rounds 2]

Each server runs as its own process on loopback, one after the other, alternating for --rounds.
One boto3 client per service (as the stack's processes hold them) sends, --requests times in
turn: an S3 PutObject of 10 KB, a GetObject of it, and a Glue GetTable, the calls every commit
and every query of the stack make. It prints the median latency of each and the server's CPU
(user + system, from psutil) per request: the cost every process of the stack shares.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from supermarket_cli.processes import free_port, http_ok, wait_until  # noqa: E402

SERVERS = {
    "moto.server (moto's own)": "moto.server",
    "supermarket_cli.moto_server": "supermarket_cli.moto_server",
}


def measure(module: str, requests: int) -> dict[str, float]:
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", module, "-H", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: http_ok(f"{endpoint}/moto-api/"), 30, 0.1, f"{module} never answered")
        options = {"endpoint_url": endpoint, "region_name": "us-east-1",
                   "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}  # fmt: skip
        s3, glue = boto3.client("s3", **options), boto3.client("glue", **options)
        s3.create_bucket(Bucket="moto-requests")
        glue.create_database(DatabaseInput={"Name": "bench"})
        glue.create_table(DatabaseName="bench", TableInput={"Name": "t"})
        body = os.urandom(10_000)
        for n in range(20):  # warm up: the services' apps, the connections
            s3.put_object(Bucket="moto-requests", Key=f"warm-{n}", Body=body)
            glue.get_table(DatabaseName="bench", Name="t")
        process = psutil.Process(server.pid)
        cpu = sum(process.cpu_times()[:2])
        seconds: dict[str, list[float]] = {"PutObject": [], "GetObject": [], "GetTable": []}
        calls = {
            "PutObject": lambda n: s3.put_object(Bucket="moto-requests", Key=f"k{n}", Body=body),
            "GetObject": lambda n: s3.get_object(Bucket="moto-requests", Key=f"k{n}")[
                "Body"
            ].read(),
            "GetTable": lambda n: glue.get_table(DatabaseName="bench", Name="t"),
        }
        for n in range(requests):
            for name, call in calls.items():
                clock = time.perf_counter()
                call(n)
                seconds[name].append(time.perf_counter() - clock)
        cpu = sum(process.cpu_times()[:2]) - cpu
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures = {name: statistics.median(values) for name, values in seconds.items()}
    figures["server CPU a request"] = cpu / (len(calls) * requests)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="of each kind, per round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SERVERS}
    for round_ in range(args.rounds):
        for name, module in SERVERS.items():
            figures = measure(module, args.requests)
            runs[name].append(figures)
            print(f"round {round_ + 1} {name}: " + ", ".join(
                f"{k} {v * 1000:.2f} ms" for k, v in figures.items()), flush=True)  # fmt: skip
    print(f"\nmedians over {args.rounds} rounds, {args.requests} requests of each kind a round "
          f"(load {' '.join(f'{x:.2f}' for x in os.getloadavg())})")  # fmt: skip
    kinds = list(next(iter(runs.values()))[0])
    print("| server | " + " | ".join(kinds) + " |")
    print("| --- |" + " ---: |" * len(kinds))
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in kinds}
               for name, rs in runs.items()}  # fmt: skip
    for name, figures in medians.items():
        print(f"| {name} | " + " | ".join(f"{figures[k] * 1000:.2f} ms" for k in kinds) + " |")
    base, ours = (medians[name] for name in SERVERS)
    print(
        "| ratio, ours / moto's | " + " | ".join(f"{ours[k] / base[k]:.2f}x" for k in kinds) + " |"
    )


if __name__ == "__main__":
    main()
