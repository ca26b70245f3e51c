"""`supermarket dashboard`: the dashboard's web server on one lake, until stopped."""

import os

from supermarket_cli.defaults import DEFAULT_DASHBOARD_PORT
from supermarket_cli.stack.discovery import choose_lake
from supermarket_dashboard.settings import (
    DEFAULT_REFRESH_SECONDS,
    DashboardSettings,
    streamlit_command,
)


def run(
    lake: str | None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_DASHBOARD_PORT,
    refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
) -> int:
    """Serves the dashboard on host:port; the server replaces this process, so a stop signal
    reaches it directly. With no lake: the running local stack's, else s3://$LAKE_BUCKET."""
    if refresh_seconds <= 0:
        raise ValueError(f"--refresh-seconds must be positive, got {refresh_seconds}")
    choice = choose_lake(lake)
    settings = DashboardSettings(choice.lake, choice.endpoint, refresh_seconds)
    print(f"dashboard http://{host}:{port}  ({choice.explanation})", flush=True)
    argv = streamlit_command(settings, host, port)
    os.execv(argv[0], argv)
    return 0  # not reached
