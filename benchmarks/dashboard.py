"""Dashboard benchmark: first render and one refresh, server side and in the browser, RSS.

    .venv/bin/python benchmarks/dashboard.py [--sizes 100000,10000000] [--runs 3]
                                             [--baseline main] [--refresh-seconds 1]

For each size a lake of that many transactions over 30 days (2026-01-01..30) is built once
under benchmarks/.work/ (as benchmarks/queries.py builds it, rollup included) and kept.

Server side, in a process of its own with the engine opened as the page opens it:
`figures.figures()` (every view the page reads) on a fresh engine (cold), then after a file
landed (a refresh: closed days kept; the page re-reads them at most once a minute, which costs
about the "all days" figure), the same for one store, every day read again (what a
filter change costs), `data_version()` alone, and the process's peak RSS.

Browser: the page served by `supermarket dashboard` in Debian's chromium. First render:
navigation until every chart is drawn, on a server that has computed nothing yet (cold; its
server part is the server side's cold figure) and then the median of --runs new pages (the
figures cached), with the page's own server time (its foot: "in N ms") and the browser's
main-thread busy time (Chrome's TaskDuration); a screenshot of each under test-artifacts/.
One refresh after a
file lands: the latency to the new figures on the page (it includes up to --refresh-seconds of
waiting for the next check), the fragment's server time as the page reports it, and the
browser's busy time over the refresh less that of an idle rerun. RSS: the dashboard's process
once up (before any page) and after the runs.

--baseline REF measures the same things, in the same run and on the same lakes, with the code
of git REF (extracted with git archive under benchmarks/.work/), and prints the ratios.
Files "land" as copies of history files in today's partitions. Filters: the lake's last 7 days
of history and today, all stores (one store where said).
"""

import argparse
import contextlib
import dataclasses
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from queries import build_lake, roll_up

from supermarket_cli.stack.children import moto_server

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work"
START = date(2026, 1, 24)  # the last 7 days of the lake's history ...
TODAY = datetime.now(UTC).date()  # ... and today, where the files "land" during the run
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
CHARTS = 6
CURRENT = ROOT
SHOTS = ROOT / "test-artifacts"


def lake_for(size: int) -> Path:
    lake = WORK / ("lake10m" if size == 10_000_000 else f"lake{size}")
    if not (lake / "lake" / "transactions").exists():
        began = time.perf_counter()
        build_lake(lake, size)
        roll_up(lake)
        print(f"  built {lake} in {time.perf_counter() - began:.0f}s", flush=True)
    return lake


ICEBERG_BUCKET = "dashboard-bench"
LANDING = WORK / "iceberg-landing"  # today's small logs, committed one per refresh


def iceberg_lake(size: int) -> str:
    """The size's history as Iceberg tables on the running moto (AWS_ENDPOINT_URL), committed
    a day at a time by the Lambda's own committer; the reference tables uploaded as-is."""
    import boto3

    from lake_contract import tables
    from lake_contract.tables import LakeTables
    from lambda_ingest.committer import commit_sources
    from lambda_ingest.transform import transform
    from supermarket_cli.convert import find_sources

    raw = WORK / f"raw{size}"
    if not raw.exists():
        supermarket("generate", "reference", "--out", str(raw))
        supermarket("generate", "history", "--out", str(raw), "--transactions", str(size),
                    "--start", "2026-01-01", "--end", "2026-01-30", "--workers", "2")  # fmt: skip
    if not LANDING.exists():
        supermarket("generate", "history", "--out", str(LANDING), "--transactions", "2000",
                    "--start", str(TODAY), "--end", str(TODAY), "--seed", "5")  # fmt: skip
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=ICEBERG_BUCKET)
    for path in sorted((raw / "lake").rglob("*.parquet")):
        s3.upload_file(str(path), ICEBERG_BUCKET, path.relative_to(raw).as_posix())
    catalog = tables.glue_catalog()
    tables.create_tables(catalog, f"s3://{ICEBERG_BUCKET}")
    lake = LakeTables(catalog, tables.DEFAULT_DATABASE)
    landed = datetime.now(UTC)
    sources = find_sources([raw / "raw"])
    for day in sorted({p.parent.name for p in sources}):
        keys = {p.relative_to(raw).as_posix(): p for p in sources if p.parent.name == day}
        results = [(key, transform(path.read_bytes(), key, landed)) for key, path in keys.items()]
        commit_sources(lake, results, {})
    return f"s3://{ICEBERG_BUCKET}"


def land_in_iceberg(n: int) -> None:
    """One of today's small logs committed as the Lambda commits it."""
    from lake_contract import tables
    from lake_contract.tables import LakeTables
    from lambda_ingest.committer import commit_sources
    from lambda_ingest.transform import transform
    from supermarket_cli.convert import find_sources

    sources = find_sources([LANDING / "raw"])
    path = sources[n % len(sources)]
    key = f"raw/incoming/dt={TODAY}/bench-{time.time_ns()}-{path.name}"
    result = transform(path.read_bytes(), key, datetime.now(UTC))
    commit_sources(LakeTables(tables.glue_catalog(), tables.DEFAULT_DATABASE), [(key, result)], {})


def land(lake: Path | str, n: int) -> None:
    if str(lake).startswith("s3://"):
        land_in_iceberg(n)
    else:
        land_a_file(Path(lake), n)


def clean(lake: Path | str) -> None:
    """Today's landed files removed from a folder lake (moto's lake lives for the run only)."""
    if str(lake).startswith("s3://"):
        return
    for table in ("transactions", "transaction_items"):
        shutil.rmtree(Path(lake) / "lake" / table / f"dt={TODAY}", ignore_errors=True)


def supermarket(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "supermarket_cli.main", *args], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def land_a_file(lake: Path, n: int) -> list[Path]:
    """A copy of one of the history's last files into today's partitions (both tables), as a
    live file lands: new rows, so the data version changes. Returns what to remove after."""
    copies = []
    for table in ("transactions", "transaction_items"):
        last = lake / "lake" / table / "dt=2026-01-30"
        files = sorted(last.glob("*.parquet"))
        source = files[n % len(files)]
        today = lake / "lake" / table / f"dt={TODAY}"
        today.mkdir(exist_ok=True)
        copies.append(today / f"bench-refresh-{n}.parquet")
        shutil.copy(source, copies[-1])
    return copies


def open_engine(lake: Path | str) -> Any:  # either tree's LocalEngine
    """The engine as the page opens it (a baseline tree may predate the page's bounds)."""
    from supermarket_queries.engine import LocalEngine

    try:
        from supermarket_dashboard.settings import ENGINE_MEMORY_LIMIT, ENGINE_THREADS
    except ImportError:
        return LocalEngine(str(lake))
    return LocalEngine(str(lake), memory_limit=ENGINE_MEMORY_LIMIT, threads=ENGINE_THREADS)


def server_side(lake: Path | str, runs: int) -> dict[str, float]:
    from supermarket_dashboard import figures

    filters = figures.Filters(START, TODAY)
    one_store = figures.Filters(START, TODAY, ("STORE0002",))
    # Kept for the whole run: the page re-reads them at most once a minute, and that refresh
    # costs about the "all days" figure (under load a cold read alone can pass the minute).
    closed = figures.ClosedDays(recheck_seconds=float("inf"))
    began = time.perf_counter()
    engine = open_engine(lake)
    land(lake, 0)
    now = datetime.now(UTC)
    figures.figures(engine, filters, now, closed, engine.data_version())
    cold = time.perf_counter() - began
    figures.figures(engine, one_store, now, closed, engine.data_version())
    refresh, store, version, whole = [], [], [], []
    try:
        for n in range(1, runs + 1):
            land(lake, n)
            began = time.perf_counter()
            current = engine.data_version()
            version.append(time.perf_counter() - began)
            began = time.perf_counter()
            figures.figures(engine, filters, now, closed, current)
            refresh.append(time.perf_counter() - began)
            began = time.perf_counter()
            figures.figures(engine, one_store, now, closed, current)
            store.append(time.perf_counter() - began)
            began = time.perf_counter()
            figures.figures(engine, filters, now)  # every day re-read: a filter change
            whole.append(time.perf_counter() - began)
    finally:
        clean(lake)
    return {
        "every_day": statistics.median(whole),
        "cold": cold,
        "refresh": statistics.median(refresh),
        "refresh_one_store": statistics.median(store),
        "data_version": statistics.median(version),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def server_side_in(tree: Path, lake: Path | str, runs: int) -> dict[str, float]:
    """server_side() in a fresh interpreter importing the code of `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    argv = [sys.executable, __file__, "--server-side", str(lake), "--runs", str(runs)]
    done = subprocess.run(argv, env=env, cwd=tree, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def baseline_tree(ref: str) -> Path:
    """git REF's files under benchmarks/.work/ (the lakes are not in git, so not in it)."""
    sha = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    tree = WORK / f"baseline-{sha}"
    if not (tree / "supermarket_dashboard").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, check=True,
                                 capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


DRAWN = """n => [...document.querySelectorAll("[data-testid='stVegaLiteChart']")]
  .filter(c => c.querySelector("canvas, svg")).length >= n"""


def busy_ms(cdp: Any) -> float:  # a Playwright CDP session
    """The page's main-thread busy time so far (Chrome's TaskDuration), in ms."""
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return 1000 * next(m["value"] for m in metrics if m["name"] == "TaskDuration")


def page_server_ms(page: Any) -> float:  # a Playwright page
    """The fragment's own time for its last run, from the page's foot ("in N ms")."""
    return float(re.search(r"in (\d+) ms", page.get_by_text("data version").inner_text())[1])


def browser(tree: Path, lake: Path | str, runs: int, refresh_seconds: float) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    from supermarket_cli.processes import Supervisor, free_port
    from supermarket_cli.stack import children

    port = free_port()
    supervisor = Supervisor(None)  # as `supermarket up` starts it
    env = {**os.environ, "PYTHONPATH": str(tree)}
    spec = children.dashboard(str(lake), "127.0.0.1", port, env, refresh_seconds)
    server = supervisor.start(dataclasses.replace(spec, cwd=tree))
    rss_up = rss_mib(server.pid)  # the server alone: the page's script runs at the first visit
    SHOTS.mkdir(exist_ok=True)
    url = f"http://127.0.0.1:{port}/?start={START}&end={TODAY}"
    figures: dict[str, float] = {}
    land(lake, 0)
    try:
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            renders, render_server, render_busy = [], [], []
            for _ in range(runs):
                page = chromium.new_page(viewport={"width": 1440, "height": 900})
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")
                began = time.perf_counter()
                page.goto(url)
                page.get_by_text("data version").wait_for(timeout=300_000)
                page.wait_for_function(DRAWN, arg=CHARTS, timeout=300_000, polling=20)
                renders.append(time.perf_counter() - began)
                render_busy.append(busy_ms(cdp))
                render_server.append(page_server_ms(page))
                page.screenshot(
                    path=SHOTS / f"dashboard-bench-{Path(str(lake)).name}-{tree.name}.png"
                )
                page.close()
            page = chromium.new_page(viewport={"width": 1440, "height": 900})
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.goto(url)
            caption = page.get_by_text("data version")
            caption.wait_for(timeout=300_000)
            page.wait_for_function(DRAWN, arg=CHARTS, timeout=300_000, polling=20)
            window = refresh_seconds + 1.5
            idle = busy_ms(cdp)
            page.wait_for_timeout(1000 * window)  # reruns with nothing new: the floor
            idle_ms = busy_ms(cdp) - idle
            latencies, server_ms, browser_ms = [], [], []
            for n in range(runs):
                before = caption.inner_text().rsplit(" ", 1)[-1]
                busy = busy_ms(cdp)
                land(lake, n + 1)
                began = time.perf_counter()
                page.wait_for_function(
                    "v => !document.body.innerText.includes('data version ' + v)", arg=before,
                    timeout=300_000, polling=20,
                )  # fmt: skip
                latencies.append(time.perf_counter() - began)
                server_ms.append(page_server_ms(page))
                page.wait_for_timeout(max(0.0, 1000 * (window - latencies[-1])))
                browser_ms.append(busy_ms(cdp) - busy - idle_ms)
            chromium.close()
        figures = {
            "first_render": statistics.median(renders),
            "first_render_server_ms": statistics.median(render_server),
            "first_render_browser_ms": statistics.median(render_busy),
            "first_render_cold": renders[0],
            "refresh_latency": statistics.median(latencies),
            "refresh_server_ms": statistics.median(server_ms),
            "refresh_browser_ms": statistics.median(browser_ms),
            "idle_rerun_browser_ms": idle_ms,
            "rss_up_mib": rss_up,
            "rss_mib": rss_mib(server.pid),
        }
    finally:
        clean(lake)
        supervisor.stop_all()
    return figures


def row(label: str, s: dict[str, float], b: dict[str, float]) -> str:
    return (f"{label:>22} {s['cold']:>7.2f}s {s['every_day']:>7.2f}s {s['refresh']:>7.3f}s "
            f"{s['refresh_one_store']:>7.3f}s {s['data_version'] * 1000:>5.1f}ms "
            f"{s['peak_rss_mib']:>5.0f}MiB | {b['first_render_cold']:>6.2f}s "
            f"{b['first_render']:>6.2f}s "
            f"{b['first_render_server_ms']:>6.0f}ms {b['first_render_browser_ms']:>6.0f}ms "
            f"{b['refresh_latency']:>6.2f}s {b['refresh_server_ms']:>6.0f}ms "
            f"{b['refresh_browser_ms']:>6.0f}ms {b['idle_rerun_browser_ms']:>5.0f}ms "
            f"{b['rss_up_mib']:>4.0f}MiB {b['rss_mib']:>4.0f}MiB")  # fmt: skip


HEADER = (f"{'':>22} {'SERVER':>7} {'':>8} {'':>8} {'':>8} {'':>7} {'':>8}   {'BROWSER'}\n"
          f"{'transactions, code':>22} {'cold':>8} {'all days':>8} {'refresh':>8} "
          f"{'1 store':>8} {'version':>7} {'peak RSS':>8} | {'cold 1st':>7} "
          f"{'1st':>7} {'server':>8} {'browser':>8} {'change':>7} {'server':>8} {'browser':>8} "
          f"{'idle':>7} {'RSS up':>7} {'RSS':>7}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,10000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--refresh-seconds", type=float, default=1.0)
    parser.add_argument("--baseline", help="a git ref to measure beside the working tree")
    parser.add_argument(
        "--iceberg",
        action="store_true",
        help="the lake as Iceberg tables on a moto server, not a local folder",
    )
    parser.add_argument("--server-side", help=argparse.SUPPRESS)  # internal: one lake, JSON
    args = parser.parse_args()
    os.environ.setdefault("STORE_TIMEZONE", "UTC")
    if args.server_side:
        lake = args.server_side
        print(json.dumps(server_side(lake if lake.startswith("s3://") else Path(lake), args.runs)))
        return
    trees = [("this tree", CURRENT)]
    if args.baseline:
        trees.insert(0, (args.baseline, baseline_tree(args.baseline)))
    with contextlib.ExitStack() as stack:
        if args.iceberg:
            endpoint = stack.enter_context(moto_server())
            os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1",
                              AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")  # fmt: skip
        rows = measure(args, trees)
    report(args, rows)


def measure(args: argparse.Namespace, trees: list[tuple[str, Path]]) -> list[tuple]:
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        lake = iceberg_lake(size) if args.iceberg else lake_for(size)
        for label, tree in trees:
            load = os.getloadavg()[0]
            print(f"{size:,} transactions, {label}: server side ... (load {load:.1f})", flush=True)
            server = server_side_in(tree, lake, args.runs)
            print(f"{size:,} transactions, {label}: browser ...", flush=True)
            rows.append((size, label, server, browser(tree, lake, args.runs, args.refresh_seconds)))
    return rows


def report(args: argparse.Namespace, rows: list[tuple]) -> None:
    print(f"\nlake: {'Iceberg tables on moto' if args.iceberg else 'a local folder'}")
    print(HEADER)
    for size, label, s, b in rows:
        print(row(f"{size:,}, {label}", s, b))
    if args.baseline:
        print("\nratios, this tree / baseline (below 1: better)")
        by = {(size, label): (s, b) for size, label, s, b in rows}
        for size in sorted({size for size, *_ in rows}):
            (s0, b0), (s1, b1) = by[(size, args.baseline)], by[(size, "this tree")]
            print(f"  {size:>12,}: refresh {s1['refresh'] / s0['refresh']:.2f}, one store "
                  f"{s1['refresh_one_store'] / s0['refresh_one_store']:.2f}, cold "
                  f"{s1['cold'] / s0['cold']:.2f}, all days {s1['every_day'] / s0['every_day']:.2f}"
                  f", page refresh server {b1['refresh_server_ms'] / b0['refresh_server_ms']:.2f}, "
                  f"RSS {b1['rss_mib'] / b0['rss_mib']:.2f}")  # fmt: skip
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    size, _, s, b = rows[-1]
    print(f"goal at {size:,}: refresh < 1 s on local data: server {s['refresh']:.3f}s "
          f"({'met' if s['refresh'] < 1 else 'MISSED'}); process < 300 MiB: {b['rss_mib']:.0f} "
          f"MiB ({'met' if b['rss_mib'] < 300 else 'MISSED'})")  # fmt: skip


if __name__ == "__main__":
    main()
