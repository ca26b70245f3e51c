"""Dashboard benchmark: first render and one refresh, server side and in the browser.

    .venv/bin/python benchmarks/dashboard.py [--sizes 100000,10000000] [--runs 3]

For each size a lake of that many transactions over 30 days (2026-01-01..30) is built once
under benchmarks/.work/ (as benchmarks/queries.py builds it, rollup included) and kept. Server
side: `figures.figures()` (every view the page reads) on a fresh engine (cold), then after a
data change (a refresh re-runs every view), and `data_version()` alone. Browser: the page
served by `supermarket dashboard` in Debian's chromium, time to first render (navigation until
every chart is drawn), then one refresh after a file lands: the latency to the new figures on
the page (it includes up to --refresh-seconds of waiting for the next check), the fragment's
own server time as the page reports it, and the browser's work (first to last DOM change of
the refresh). Files "land" as copies of history files in today's partitions. Filters: the
lake's last 7 days of history and today, all stores; server side also one store, and every day
read again (what a filter change costs). RSS: the dashboard's process after the runs.
"""

import argparse
import os
import re
import shutil
import statistics
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from queries import build_lake, roll_up

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work"
START = date(2026, 1, 24)  # the last 7 days of the lake's history ...
TODAY = datetime.now(UTC).date()  # ... and today, where the files "land" during the run
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
CHARTS = 6


def lake_for(size: int) -> Path:
    lake = WORK / ("lake10m" if size == 10_000_000 else f"lake{size}")
    if not (lake / "lake" / "transactions").exists():
        began = time.perf_counter()
        build_lake(lake, size)
        roll_up(lake)
        print(f"  built {lake} in {time.perf_counter() - began:.0f}s", flush=True)
    return lake


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


def clean(lake: Path) -> None:
    for table in ("transactions", "transaction_items"):
        shutil.rmtree(lake / "lake" / table / f"dt={TODAY}", ignore_errors=True)


def server_side(lake: Path, runs: int) -> dict[str, float]:
    from supermarket_dashboard import figures
    from supermarket_queries.engine import LocalEngine

    filters = figures.Filters(START, TODAY)
    one_store = figures.Filters(START, TODAY, ("STORE0002",))
    closed = figures.ClosedDays()
    began = time.perf_counter()
    engine = LocalEngine(str(lake))
    land_a_file(lake, 0)
    now = datetime.now(UTC)
    figures.figures(engine, filters, now, closed, engine.data_version())
    cold = time.perf_counter() - began
    figures.figures(engine, one_store, now, closed, engine.data_version())
    refresh, store, version, whole = [], [], [], []
    try:
        for n in range(1, runs + 1):
            land_a_file(lake, n)
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
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


DRAWN = """n => [...document.querySelectorAll("[data-testid='stVegaLiteChart']")]
  .filter(c => c.querySelector("canvas, svg")).length >= n"""
OBSERVE = """() => {
  window.mutations = [];
  new MutationObserver(() => window.mutations.push(performance.now()))
    .observe(document.body, {subtree: true, childList: true, characterData: true,
                             attributes: true});
}"""


def browser(lake: Path, runs: int, refresh_seconds: float) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    from supermarket_cli.processes import Supervisor, free_port
    from supermarket_cli.stack import children

    port = free_port()
    supervisor = Supervisor(None)  # as `supermarket up` starts it
    server = supervisor.start(
        children.dashboard(str(lake), "127.0.0.1", port, os.environ, refresh_seconds)
    )
    url = f"http://127.0.0.1:{port}/?start={START}&end={TODAY}"
    figures: dict[str, float] = {}
    land_a_file(lake, 0)
    try:
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            renders = []
            for _ in range(runs):
                page = chromium.new_page(viewport={"width": 1440, "height": 900})
                began = time.perf_counter()
                page.goto(url)
                page.get_by_text("data version").wait_for(timeout=120_000)
                page.wait_for_function(DRAWN, arg=CHARTS, timeout=120_000, polling=20)
                renders.append(time.perf_counter() - began)
                page.close()
            page = chromium.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url)
            caption = page.get_by_text("data version")
            caption.wait_for(timeout=120_000)
            latencies, server_ms, browser_ms = [], [], []
            for n in range(runs):
                before = caption.inner_text().rsplit(" ", 1)[-1]
                page.evaluate(OBSERVE)
                land_a_file(lake, n + 1)
                began = time.perf_counter()
                page.wait_for_function(
                    "v => !document.body.innerText.includes('data version ' + v)", arg=before,
                    timeout=120_000, polling=20,
                )  # fmt: skip
                latencies.append(time.perf_counter() - began)
                page.wait_for_timeout(1500)  # the rest of the refresh's DOM changes
                stamps = page.evaluate("window.mutations")
                burst = [t for t in stamps if t <= stamps[0] + 1000 * refresh_seconds]
                browser_ms.append(burst[-1] - burst[0])
                server_ms.append(float(re.search(r"in (\d+) ms", caption.inner_text())[1]))
            chromium.close()
        figures = {
            "first_render": statistics.median(renders),
            "refresh_latency": statistics.median(latencies),
            "refresh_server_ms": statistics.median(server_ms),
            "refresh_browser_ms": statistics.median(browser_ms),
            "rss_mib": rss_mib(server.pid),
        }
    finally:
        clean(lake)
        supervisor.stop_all()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,10000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--refresh-seconds", type=float, default=1.0)
    args = parser.parse_args()
    os.environ.setdefault("STORE_TIMEZONE", "UTC")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        lake = lake_for(size)
        print(f"{size:,} transactions: server side ...", flush=True)
        server = server_side(lake, args.runs)
        print(f"{size:,} transactions: browser ...", flush=True)
        rows.append((size, server, browser(lake, args.runs, args.refresh_seconds)))
    print(f"\n{'transactions':>12} {'server cold':>11} {'all days':>8} {'refresh':>8} "
          f"{'1 store':>8} "
          f"{'version':>8} {'first render':>12} {'change->page':>12} {'page server':>11} "
          f"{'browser':>8} {'RSS':>8}")  # fmt: skip
    for size, s, b in rows:
        print(f"{size:>12,} {s['cold']:>10.3f}s {s['every_day']:>7.3f}s {s['refresh']:>7.3f}s "
              f"{s['refresh_one_store']:>7.3f}s {s['data_version'] * 1000:>6.1f}ms "
              f"{b['first_render']:>11.2f}s {b['refresh_latency']:>11.2f}s "
              f"{b['refresh_server_ms']:>9.0f}ms {b['refresh_browser_ms']:>6.0f}ms "
              f"{b['rss_mib']:>5.0f}MiB")  # fmt: skip
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    size, s, b = rows[-1]
    print(f"goal at {size:,}: refresh < 1 s on local data: server {s['refresh']:.3f}s "
          f"({'met' if s['refresh'] < 1 else 'MISSED'}); process < 300 MiB: {b['rss_mib']:.0f} "
          f"MiB ({'met' if b['rss_mib'] < 300 else 'MISSED'})")  # fmt: skip


if __name__ == "__main__":
    main()
