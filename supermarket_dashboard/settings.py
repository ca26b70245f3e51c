"""What the dashboard process is told, and the `streamlit run` command that starts it."""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
DEFAULT_REFRESH_SECONDS = 3.0
DEFAULT_RANGE_DAYS = 7  # the date filter's first range: the last week, today included
# DuckDB inside the page's process: bounded, so the process stays small beside the stack.
ENGINE_MEMORY_LIMIT = "256MB"
ENGINE_THREADS = 2


@dataclass(frozen=True)
class DashboardSettings:
    lake: str  # s3://bucket or a folder
    endpoint: str | None = None  # S3 endpoint (moto); None: boto3's own resolution
    refresh_seconds: float = DEFAULT_REFRESH_SECONDS

    def script_args(self) -> list[str]:
        args = ["--lake", self.lake, "--refresh-seconds", str(self.refresh_seconds)]
        return args + (["--endpoint", self.endpoint] if self.endpoint else [])

    @classmethod
    def from_argv(cls, argv: list[str]) -> "DashboardSettings":
        parser = argparse.ArgumentParser(prog="supermarket_dashboard/app.py")
        parser.add_argument("--lake", required=True)
        parser.add_argument("--endpoint")
        parser.add_argument("--refresh-seconds", type=float, default=DEFAULT_REFRESH_SECONDS)
        args = parser.parse_args(argv)
        return cls(args.lake, args.endpoint, args.refresh_seconds)


def streamlit_command(settings: DashboardSettings, host: str, port: int) -> list[str]:
    """The server, bound to host:port, headless, with nothing phoned home or watched."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "minimal",
        "--theme.base", "light",
        "--", *settings.script_args(),
    ]  # fmt: skip
